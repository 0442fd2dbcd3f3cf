//! A `passerelle witness serve` process for tests, and what it needs: a
//! key made by `passerelle witness keygen` and a `witness.toml`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use passerelle::audit::cosignature::CosignatureVerifier;
use passerelle::audit::signed_note::VerifierKey;
use passerelle::audit::witness::AddCheckpoint;

/// The `passerelle` binary of this build.
pub fn passerelle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_passerelle"))
}

/// `passerelle witness keygen`: the key file and the printed verifier key.
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, CosignatureVerifier) {
    let key = dir.join(format!("{}.key", name.replace('/', "_")));
    let out = passerelle()
        .args(["witness", "keygen", "--name", name, "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let vkey = stdout
        .lines()
        .find_map(|l| l.strip_prefix("witness verifier key (C2SP cosignature/v1): "))
        .unwrap_or_else(|| panic!("no verifier key printed: {stdout}"));
    (key, vkey.parse().unwrap())
}

/// A witness process; killed (SIGKILL) when dropped.
pub struct WitnessProcess {
    child: Child,
    pub addr: String,
}

impl WitnessProcess {
    pub fn start(config: &Path) -> Self {
        Self::start_scheme(config, "http")
    }

    pub fn start_scheme(config: &Path, scheme: &str) -> Self {
        let mut child = passerelle()
            .args(["witness", "serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split(&format!("listening on {scheme}://"))
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("the witness did not start: {line:?}"))
            .to_string();
        Self { child, addr }
    }

    /// Kills the process without letting it finish anything.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub async fn request(&self, method: &str, path: &str, body: String) -> (u16, String, String) {
        let tcp = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.addr)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, ctype, String::from_utf8(body.to_vec()).unwrap())
    }

    pub async fn add(&self, old: u64, proof: &[[u8; 32]], note: &str) -> (u16, String, String) {
        self.request(
            "POST",
            "/add-checkpoint",
            AddCheckpoint::body(old, proof, note),
        )
        .await
    }
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn write_config(dir: &Path, key: &Path, logs: &[&VerifierKey]) -> PathBuf {
    let mut toml = format!(
        "listen = \"127.0.0.1:0\"\nkey = {:?}\nstate = {:?}\n",
        key.display().to_string(),
        dir.join("state").display().to_string()
    );
    for k in logs {
        toml.push_str(&format!(
            "\n[[log]]\norigin = {:?}\nkeys = [{:?}]\n",
            k.name(),
            k.to_string()
        ));
    }
    let path = dir.join("witness.toml");
    std::fs::write(&path, toml).unwrap();
    path
}
