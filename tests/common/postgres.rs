//! A real PostgreSQL server for the tests: `initdb` in a temporary
//! directory, `postgres` on a free loopback port, stopped on drop.
//!
//! Finds the server's binaries with `pg_config --bindir` or under
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package, which
//! `.ci/run` installs). As root (CI and these machines), `initdb` refuses
//! to run, so the server runs as the `postgres` system user (`runuser`),
//! owning its temporary directory. Where the server cannot be started the
//! test fails with a message naming what is missing: never a silent skip.
//! Every wait is a bounded loop. Include it with
//! `#[path = "common/postgres.rs"] mod postgres_server;`.
#![allow(dead_code)]

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A running server, stopped (and its directory removed) on drop.
pub struct PgServer {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    /// The system user the server runs as, when the tests run as root.
    run_as: Option<String>,
    port: u16,
    child: Option<Child>,
    next_db: AtomicUsize,
}

/// TLS for a test server: its certificate and key, the CA it checks client
/// certificates against, and the whole `pg_hba.conf` (who may connect,
/// over what, how).
pub struct ServerTls {
    /// The server's certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PEM).
    pub key_pem: String,
    /// The CA for client certificates (PEM), `ssl_ca_file`.
    pub client_ca_pem: String,
    /// The `pg_hba.conf` that replaces initdb's.
    pub hba: String,
}

/// Fails the test loudly: PostgreSQL is required, never skipped.
fn missing(what: &str) -> ! {
    panic!(
        "\n\nPostgreSQL tests cannot run: {what}.\n\
         These tests need PostgreSQL's server binaries (initdb, postgres): on Debian, \
         `apt-get install postgresql` (.ci/run installs it when `initdb` is missing).\n\n"
    )
}

/// The directory of `initdb` and `postgres`.
fn bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
            return dir;
        }
    }
    // Debian keeps the server's binaries out of PATH, one directory per
    // major version: take the newest.
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => missing(
            "`initdb` was found neither by `pg_config --bindir` nor under /usr/lib/postgresql/*/bin",
        ),
    }
}

fn output(cmd: &mut Command, what: &str) -> String {
    match cmd.output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(out) => missing(&format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => missing(&format!("{what} could not run: {e}")),
    }
}

/// Runs `f` on a thread of its own: the synchronous client may not run
/// on a thread that drives async tasks (the `#[tokio::test]`s).
fn own_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}

impl PgServer {
    /// Initialises and starts a server; panics saying what is missing when
    /// it cannot.
    pub fn start() -> PgServer {
        own_thread(|| Self::start_here(None))
    }

    /// A server that also speaks TLS, with `tls`'s certificate and
    /// `pg_hba.conf`.
    pub fn start_tls(tls: &ServerTls) -> PgServer {
        own_thread(|| Self::start_here(Some(tls)))
    }

    fn start_here(tls: Option<&ServerTls>) -> PgServer {
        let bindir = bindir();
        let root = output(Command::new("id").arg("-u"), "`id -u`") == "0";
        let run_as = root.then(|| "postgres".to_string());
        // As root, in /tmp: the server's user must be able to reach it,
        // whatever TMPDIR says.
        let dir = if root {
            tempfile::Builder::new().tempdir_in("/tmp")
        } else {
            tempfile::tempdir()
        }
        .expect("a temporary directory");
        if let Some(user) = &run_as {
            // initdb refuses root: the server's user owns the directory.
            let uid = output(Command::new("id").args(["-u", user]), "`id -u postgres`");
            let gid = output(Command::new("id").args(["-g", user]), "`id -g postgres`");
            let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse()) else {
                missing("the `postgres` system user has no numeric id")
            };
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap_or_else(|e| {
                missing(&format!("cannot give the data directory to postgres: {e}"))
            });
        }
        let owner = match &run_as {
            Some(user) => {
                let uid = output(Command::new("id").args(["-u", user]), "`id -u postgres`");
                let gid = output(Command::new("id").args(["-g", user]), "`id -g postgres`");
                uid.parse().ok().zip(gid.parse().ok())
            }
            None => None,
        };
        let mut server = PgServer {
            dir,
            bindir,
            run_as,
            port: 0,
            child: None,
            next_db: AtomicUsize::new(0),
        };
        let data = server.data();
        let init = server
            .command("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-D",
            ])
            .arg(&data)
            .output()
            .unwrap_or_else(|e| missing(&format!("initdb could not run: {e}")));
        if !init.status.success() {
            missing(&format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&init.stderr).trim()
            ));
        }
        let mut settings = vec!["listen_addresses=127.0.0.1".to_string(), "fsync=on".into()];
        if let Some(tls) = tls {
            // The key must be the server user's and unreadable by others,
            // or the server refuses it.
            for (name, contents, mode) in [
                ("server.crt", &tls.cert_pem, 0o644),
                ("server.key", &tls.key_pem, 0o600),
                ("client-ca.crt", &tls.client_ca_pem, 0o644),
                ("pg_hba.conf", &tls.hba, 0o600),
            ] {
                let path = data.join(name);
                std::fs::write(&path, contents).expect("a TLS file of the server");
                std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                    .expect("its mode");
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("its owner");
                }
            }
            settings.extend([
                "ssl=on".to_string(),
                "ssl_cert_file=server.crt".into(),
                "ssl_key_file=server.key".into(),
                "ssl_ca_file=client-ca.crt".into(),
            ]);
        }
        // Started directly (not through pg_ctl) so that the child is the
        // server, or runuser waiting on it; its log goes to a file.
        server.port = free_port();
        let log = File::create(server.dir.path().join("server.log")).expect("the server log");
        let child = server
            .command("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &server.port.to_string(), "-k"])
            .arg(server.dir.path())
            .args(settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| missing(&format!("postgres could not start: {e}")));
        server.child = Some(child);
        server.wait_ready();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command of the server's binaries, as the server's user.
    fn command(&self, binary: &str) -> Command {
        let program = self.bindir.join(binary);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Waits (at most 60 s) until the server accepts connections.
    fn wait_ready(&mut self) {
        for _ in 0..240 {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    missing(&format!("postgres exited ({status}):\n{}", self.log()));
                }
            }
            if ::postgres::Client::connect(&self.admin_params(), ::postgres::NoTls).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        missing(&format!(
            "postgres did not accept connections within 60 s:\n{}",
            self.log()
        ))
    }

    fn admin_params(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates a new empty database and returns its URL, as `store = …`
    /// in `gateway.toml` takes it.
    pub fn new_database(&self) -> String {
        own_thread(|| self.new_database_here())
    }

    fn new_database_here(&self) -> String {
        let name = format!("store{}", self.next_db.fetch_add(1, Ordering::Relaxed));
        let mut admin = ::postgres::Client::connect(&self.admin_params(), ::postgres::NoTls)
            .expect("the server accepts connections");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates the login role `role` (when new) and a new empty database
    /// it owns; returns the database's URL for `role` (no query string).
    pub fn new_database_of(&self, role: &str) -> String {
        own_thread(|| {
            let name = format!("store{}", self.next_db.fetch_add(1, Ordering::Relaxed));
            let mut admin = ::postgres::Client::connect(&self.admin_params(), ::postgres::NoTls)
                .expect("the server accepts connections");
            let exists = admin
                .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
                .expect("pg_roles")
                .is_some();
            if !exists {
                admin
                    .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
                    .expect("CREATE ROLE");
            }
            admin
                .batch_execute(&format!("CREATE DATABASE {name} OWNER {role}"))
                .expect("CREATE DATABASE");
            format!("postgres://{role}@127.0.0.1:{}/{name}", self.port)
        })
    }

    /// The server's log so far (to show why a connection was refused).
    pub fn server_log(&self) -> String {
        self.log()
    }

    /// A copy of the database `url` names, as restoring a backup taken now
    /// gives (`CREATE DATABASE … TEMPLATE`: nothing may be connected to
    /// the source); returns the copy's URL.
    pub fn copy_database(&self, url: &str) -> String {
        own_thread(|| {
            let source = url.rsplit('/').next().expect("a database name");
            let name = format!("copy{}", self.next_db.fetch_add(1, Ordering::Relaxed));
            let mut admin = ::postgres::Client::connect(&self.admin_params(), ::postgres::NoTls)
                .expect("the server accepts connections");
            admin
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {source}"))
                .expect("CREATE DATABASE … TEMPLATE");
            format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
        })
    }

    /// Stops the server: a fast shutdown by `pg_ctl`, waiting at most 30 s,
    /// then SIGKILL of the child if it is still there.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "fast", "-w", "-t", "30", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for _ in 0..120 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
