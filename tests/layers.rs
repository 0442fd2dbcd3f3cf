//! The layers, checked from the build graph: the core crate
//! (`passerelle-core`) does no I/O, so nothing among its dependencies, at
//! any depth, may be an async runtime, an HTTP or TLS stack, a database or
//! a socket library. Reads `cargo metadata`, the graph cargo itself builds
//! from, so a dependency added to `crates/core/Cargo.toml` (or pulled in by
//! one) fails here rather than in a review. The other crates depend only
//! on the layers below them: the station and the witness never on the
//! gateway.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

/// Crates whose presence under the core would mean it can do I/O.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "hyper",
    "hyper-util",
    "axum",
    "h2",
    "rustls",
    "tokio-rustls",
    "rusqlite",
    "libsqlite3-sys",
    "tokio-postgres",
    "postgres",
    "sqlx",
    "reqwest",
    "tempfile",
];

fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Names of every package `root` depends on for its library at run time
/// (normal dependencies, transitively; dev-dependencies left out).
fn runtime_closure(meta: &serde_json::Value, root: &str) -> BTreeSet<String> {
    let packages = meta["packages"].as_array().expect("packages");
    let name_of: HashMap<&str, &str> = packages
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let root_id = packages
        .iter()
        .find(|p| p["name"] == root)
        .and_then(|p| p["id"].as_str())
        .unwrap_or_else(|| panic!("{root} is a workspace member"));
    let nodes: HashMap<&str, &serde_json::Value> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let mut seen = BTreeSet::new();
    let mut todo = vec![root_id];
    while let Some(id) = todo.pop() {
        for dep in nodes[id]["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            let pkg = dep["pkg"].as_str().unwrap();
            if normal && seen.insert(name_of[pkg].to_string()) {
                todo.push(pkg);
            }
        }
    }
    seen
}

#[test]
fn the_core_crate_depends_on_nothing_that_does_io() {
    let closure = runtime_closure(&metadata(), "passerelle-core");
    let found: Vec<&str> = FORBIDDEN
        .iter()
        .copied()
        .filter(|f| closure.contains(*f))
        .collect();
    assert!(
        found.is_empty(),
        "passerelle-core depends on {found:?}; the core must do no I/O"
    );
    // The check itself must see the graph: the core does depend on ring.
    assert!(closure.contains("ring"), "{closure:?}");
}

/// Names of the workspace's own crates that `root` depends on at run time.
fn own_crates(meta: &serde_json::Value, root: &str) -> BTreeSet<String> {
    runtime_closure(meta, root)
        .into_iter()
        .filter(|n| n.starts_with("passerelle"))
        .collect()
}

#[test]
fn each_crate_depends_only_on_the_layers_below_it() {
    let meta = metadata();
    let set =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|n| n.to_string()).collect() };
    assert_eq!(own_crates(&meta, "passerelle-core"), set(&[]));
    assert_eq!(
        own_crates(&meta, "passerelle-identity"),
        set(&["passerelle-core"])
    );
    // A witness runs on the oversight body's machine: nothing of the
    // gateway, its store or its identities.
    assert_eq!(
        own_crates(&meta, "passerelle-witness"),
        set(&["passerelle-core"])
    );
    // A station's laptop carries neither the gateway nor its database.
    assert_eq!(
        own_crates(&meta, "passerelle-station"),
        set(&["passerelle-core", "passerelle-identity"])
    );
    let station = runtime_closure(&meta, "passerelle-station");
    assert!(!station.contains("rusqlite") && !station.contains("axum"));
    assert!(!own_crates(&meta, "passerelle-gateway").contains("passerelle-station"));
}

/// The core's sources name no file, socket, process or environment API:
/// its dependency list cannot show a `std::fs` call.
#[test]
fn the_core_sources_use_no_io_from_std() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/core/src");
    let mut todo = vec![root];
    let mut found = Vec::new();
    let mut files = 0;
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("core sources") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).expect("source");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for api in ["std::fs", "std::net", "std::process", "std::env", "File::"] {
                    if code.contains(api) {
                        found.push(format!("{}:{}: {api}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(files > 20, "read the core's sources ({files} files)");
    assert!(found.is_empty(), "the core does I/O: {found:#?}");
}

#[test]
fn the_gateway_side_does_depend_on_io_crates() {
    // Guards the guard: were the walk broken, the test above would pass
    // on an empty set.
    let closure = runtime_closure(&metadata(), "passerelle-gateway");
    assert!(closure.contains("tokio") && closure.contains("rusqlite"));
}
