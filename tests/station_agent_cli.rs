//! `passerelle station …` as an officer meets it, against a running
//! gateway: init, run, send while the agent runs, status, list, read,
//! lock, a wrong passphrase refused, and reading with no agent running.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{item, Harness};

const PASS: &str = "sable et vent";

fn passerelle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_passerelle"))
}

/// Runs `passerelle station ARGS --config CONFIG` with `passphrase` in the
/// environment; its exit status and stdout.
fn station(config: &Path, passphrase: &str, args: &[&str]) -> (bool, String, String) {
    let out = passerelle()
        .arg("station")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("PASSERELLE_PASSPHRASE", passphrase)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(config: &Path, args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.push("--json");
    let (ok, out, err) = station(config, PASS, &args);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_writes_syncs_reads_and_locks_with_the_station_commands() {
    let h = Harness::start().await;
    let config: PathBuf = h
        .path()
        .join(passerelle::pki::station_dir("police/lo/rabat"))
        .join("client.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("127.0.0.1:0", &h.addr().to_string());
    std::fs::write(
        &config,
        format!("{text}\n[agent]\npoll_seconds = 1\nreconnect_min_millis = 50\n"),
    )
    .unwrap();

    for sub in [
        "init", "run", "unlock", "lock", "status", "list", "read", "send",
    ] {
        let out = passerelle()
            .args(["station", sub, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "station {sub} --help");
    }
    let (ok, _, err) = station(&config, PASS, &["init"]);
    assert!(ok, "{err}");
    let (ok, _, err) = station(&config, PASS, &["init"]);
    assert!(!ok && err.contains("holds a vault already"), "{err}");
    let status = json(&config, &["status"]);
    assert!(
        status["link"].is_null() && status["locked"] == true,
        "{status}"
    );

    let agent = Child(
        passerelle()
            .args(["station", "run", "--unlock", "--config"])
            .arg(&config)
            .env("PASSERELLE_PASSPHRASE", PASS)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let socket = config.parent().unwrap().join("control/agent.sock");
    let start = Instant::now();
    while !socket.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the agent did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A second agent for the same station is refused.
    let (ok, _, err) = station(&config, PASS, &["run"]);
    assert!(!ok && err.contains("another agent"), "{err}");

    let vsse = h.station("vsse/analysis/ct");
    let to_rabat = vsse
        .submit(&item(
            &vsse,
            "ctx-cli",
            &["police/lo/rabat"],
            "context for Rabat",
        ))
        .await
        .unwrap()
        .receipt
        .item_ref;
    let queued = json(
        &config,
        &[
            "send",
            "--to",
            "vsse/analysis/ct",
            "--text",
            "a request",
            "--priority",
            "FLASH",
            "--case",
            "CT-2026-014",
            "--id",
            "st-1",
        ],
    );
    assert_eq!(queued["queued"], true);

    let start = Instant::now();
    loop {
        let s = json(&config, &["status"]);
        if s["received"] == 1 && s["sent"] == 1 {
            assert_eq!(s["link"]["up"], true);
            assert_eq!(s["unread"], 1);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "not synced: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list = json(&config, &["list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["priority"], "FLASH", "FLASH first: {list:?}");
    let shown = json(&config, &["read", &to_rabat]);
    assert_eq!(shown["verified"], true);
    assert_eq!(shown["portions"][0]["text"], "context for Rabat");
    let (ok, text, _) = station(&config, PASS, &["status"]);
    assert!(ok && text.contains("link      up since"), "{text}");

    let (ok, _, _) = station(&config, PASS, &["lock"]);
    assert!(ok);
    let (ok, _, err) = station(&config, PASS, &["list"]);
    assert!(!ok && err.contains("locked"), "{err}");
    let (ok, _, err) = station(&config, "not it", &["unlock"]);
    assert!(!ok && err.contains("wrong passphrase"), "{err}");
    let (ok, _, _) = station(&config, PASS, &["unlock"]);
    assert!(ok);

    // The agent killed (its socket left behind): the officer still reads,
    // from the vault itself.
    drop(agent);
    let list = json(&config, &["list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (ok, _, err) = station(&config, "not it", &["list"]);
    assert!(!ok && err.contains("wrong passphrase"), "{err}");
    let (ok, text, _) = station(&config, PASS, &["read", &to_rabat]);
    assert!(ok && text.contains("context for Rabat"), "{text}");

    // A new passphrase: the old one opens nothing, the items stay.
    let new_pass = h.path().join("new-passphrase");
    std::fs::write(&new_pass, "vent de sable\n").unwrap();
    let (ok, _, err) = station(
        &config,
        PASS,
        &[
            "passphrase",
            "--new-passphrase-file",
            new_pass.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = station(&config, PASS, &["list"]);
    assert!(!ok && err.contains("wrong passphrase"), "{err}");
    let (ok, text, _) = station(&config, "vent de sable", &["read", &to_rabat]);
    assert!(ok && text.contains("context for Rabat"), "{text}");
}

#[test]
fn the_station_abroad_demo_runs_and_exits_zero() {
    let out = passerelle().args(["demo", "--abroad"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("every step behaved as expected"),
        "{stdout}"
    );
    assert!(stdout.contains("nothing readable"), "{stdout}");
    assert!(!stdout.contains("| NO"), "{stdout}");
}

/// `passerelle station init` at a terminal: a pseudo-terminal made by
/// `script` (util-linux), whose transcript is everything the terminal
/// showed. The passphrase typed must not be in it, and must be the one
/// the vault was made with.
#[tokio::test]
async fn a_passphrase_typed_at_a_terminal_is_not_shown() {
    use std::io::{Read, Write};
    let h = Harness::start().await;
    let config: PathBuf = h
        .path()
        .join(passerelle::pki::station_dir("police/lo/rabat"))
        .join("client.toml");
    let typed = "dunes-at-dawn-4417";
    let command = format!(
        "{} station init --config {}",
        env!("CARGO_BIN_EXE_passerelle"),
        config.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env_remove("PASSERELLE_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script (util-linux) makes the pseudo-terminal");
    // What the terminal shows, read on a thread so that a hang is a
    // failure at a deadline, not a stuck test run.
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n @ 1..) = out.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut shown = Vec::new();
    let read_until = |shown: &mut Vec<u8>, done: &dyn Fn(&[u8]) -> bool| {
        while !done(shown) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => shown.extend(chunk),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                Err(e) => panic!("{e}: {}", String::from_utf8_lossy(shown)),
            }
        }
    };
    // Typed only once the prompt is there, as a person would: the terminal
    // echoes what arrives before echo is turned off.
    read_until(&mut shown, &|s| {
        String::from_utf8_lossy(s).contains("vault passphrase: ")
    });
    // rpassword writes the prompt, then turns echo off: a person takes
    // longer than that to type, and so does this test.
    std::thread::sleep(Duration::from_secs(1));
    let mut input = child.stdin.take().unwrap();
    input.write_all(format!("{typed}\n").as_bytes()).unwrap();
    read_until(&mut shown, &|_| false);
    drop(input);
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&shown));
    let shown = String::from_utf8_lossy(&shown);
    assert!(shown.contains("vault made in"), "{shown}");
    assert!(!shown.contains(typed), "the passphrase was shown: {shown}");
    let (ok, list, err) = station(&config, typed, &["list"]);
    assert!(ok && list.contains("no items"), "{err}");
}
