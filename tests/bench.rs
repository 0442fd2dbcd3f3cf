//! A short smoke of the load generator, `passerelle bench`, against a real
//! gateway on loopback: it must report figures and no errors. It proves
//! the tool works; no speed is asserted.

mod common;

use common::Harness;
use passerelle::config::GatewayConfig;
use std::process::Command;

/// One principal from one address is the whole load here: lift the limits
/// that exist to stop exactly that.
fn lift_limits(c: &mut GatewayConfig) {
    let l = &mut c.limits;
    l.handshakes_per_address_per_second = 1_000_000;
    l.handshake_burst_per_address = 1_000_000;
    l.requests_per_principal_per_second = 1_000_000;
    l.request_burst_per_principal = 1_000_000;
}

fn bench(h: &Harness, extra: &[&str]) -> String {
    let config = h
        .path()
        .join(passerelle::pki::station_dir("police/lo/rabat"))
        .join("client.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .arg("bench")
        .arg("--config")
        .arg(&config)
        .args(["--gateway", &h.addr().to_string()])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_submits_over_kept_connections_and_reports_figures() {
    let h = Harness::start_with(lift_limits).await;
    let pid = std::process::id().to_string();
    let out = bench(
        &h,
        &[
            "--stations",
            "2",
            "--duration",
            "1",
            "--items",
            "2000",
            "--pid",
            &pid,
        ],
    );
    assert!(out.contains("items/s"), "{out}");
    assert!(out.contains("p99.9"), "{out}");
    assert!(out.contains("crypto limit"), "{out}");
    assert!(out.contains("CPU s per 1,000 items"), "{out}");
    assert!(out.contains("errors: none"), "{out}");
    // Kept-alive: no new connection while timed.
    assert!(out.contains("new connections while timed: 0"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_open_loop_with_a_recipient_reports_the_full_cycle() {
    let h = Harness::start_with(lift_limits).await;
    let recipient = h
        .path()
        .join(passerelle::pki::station_dir("vsse/analysis/ct"))
        .join("client.toml");
    let recipient = recipient.to_string_lossy();
    let out = bench(
        &h,
        &[
            "--stations",
            "2",
            "--duration",
            "1",
            "--rate",
            "50",
            "--recipient",
            &recipient,
        ],
    );
    assert!(out.contains("open loop, 50 items/s offered"), "{out}");
    assert!(out.contains("delivery: one recipient station"), "{out}");
    assert!(out.contains("fetch: p50"), "{out}");
    assert!(out.contains("errors: none"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_full_cycle_with_batches_reports_its_ratio() {
    let h = Harness::start_with(lift_limits).await;
    let recipient = h
        .path()
        .join(passerelle::pki::station_dir("vsse/analysis/ct"))
        .join("client.toml");
    let recipient = recipient.to_string_lossy();
    let out = bench(
        &h,
        &[
            "--stations",
            "2",
            "--duration",
            "1",
            "--items",
            "300",
            "--recipient",
            &recipient,
            "--batch",
            "20",
        ],
    );
    assert!(
        out.contains("full cycle: one recipient station, batched fetch (up to 20"),
        "{out}"
    );
    assert!(out.contains("full-cycle ratio"), "{out}");
    assert!(out.contains("errors: none"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_handshakes_reports_full_and_resumed_connections() {
    let h = Harness::start_with(lift_limits).await;
    let out = bench(
        &h,
        &[
            "--handshakes",
            "--connections",
            "20",
            "--concurrency",
            "2",
            "--rounds",
            "2",
        ],
    );
    assert!(out.contains("full"), "{out}");
    // Every connection of the resumed rounds resumed a session.
    assert!(
        out.contains("(20 ok, 20 of them resumed, 0 failed)"),
        "{out}"
    );
    assert!(
        out.contains("(20 ok, 0 of them resumed, 0 failed)"),
        "{out}"
    );
}
