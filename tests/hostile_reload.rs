//! `passerelle reload` probed with a pid file it did not write: whoever
//! can write beside the store (or a crash that left the file behind)
//! chooses what `reload` signals. A negative number is a process group to
//! `kill`, `-1` every process the operator may signal, `0` the operator's
//! own group: reload signals only a single positive process id.

use std::os::unix::process::CommandExt;
use std::process::Command;

use passerelle::config::GatewayConfig;

#[test]
fn reload_signals_one_process_not_a_group_a_pid_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let pki = passerelle::pki::generate().unwrap();
    passerelle::pki::write_example(dir.path(), &pki, "127.0.0.1:0", None).unwrap();
    let config_path = dir.path().join("gateway.toml");
    let config = GatewayConfig::load(&config_path).unwrap();
    let pid_file = config.store.with_extension("pid");
    std::fs::create_dir_all(pid_file.parent().unwrap()).unwrap();

    // A bystander in a process group of its own, which only this test
    // owns: what `kill -HUP -<group>` would reach.
    let mut bystander = Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .unwrap();
    let group = bystander.id();
    for hostile in [
        format!("-{group}"),
        format!("{group} -{group}"),
        format!("-HUP -{group}"),
        "0x10".to_string(),
        String::new(),
    ] {
        std::fs::write(&pid_file, &hostile).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_passerelle"))
            .args(["reload", "--wait", "1", "--config"])
            .arg(&config_path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{hostile:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a process id"), "{hostile:?}: {err}");
        assert!(
            bystander.try_wait().unwrap().is_none(),
            "{hostile:?} reached the bystander's group"
        );
    }
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}
