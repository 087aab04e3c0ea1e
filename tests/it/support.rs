//! Shared helpers: temporary packages, a capmux server on an in-memory duplex pair, and
//! the built binary with an environment that cannot see the developer's own packages.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use capmux::{Config, Options, Server};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes a native package `name` under `dir` with `capmux` as its manifest object and
/// `files` (relative path, content) beside it; returns its root.
pub fn package(dir: &Path, name: &str, capmux: Value, files: &[(&str, &str)]) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(&root).expect("create package root");
    let manifest = json!({ "name": name, "version": "1.0.0", "capmux": capmux });
    std::fs::write(root.join("package.json"), manifest.to_string()).expect("write manifest");
    for (rel, content) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create folder");
        std::fs::write(path, content).expect("write file");
    }
    root
}

/// A command tool declaration running `script` (a file of the package) with python3.
pub fn python_tool(name: &str, script: &str, schema: Value) -> Value {
    json!({ "name": name, "description": format!("test tool {name}"),
            "inputSchema": schema, "command": ["python3", script] })
}

/// Loads exactly `roots` (nothing bundled, no user folders) under `config_toml`.
pub fn load(roots: &[PathBuf], config_toml: &str, cwd: &Path) -> capmux::Loaded {
    let config_path = cwd.join("capmux-test-config.toml");
    let mut config = Config::parse(config_toml, &config_path).expect("valid test config");
    config.user_packages = false;
    let options = Options::only(roots.to_vec(), cwd.to_path_buf());
    capmux::load_with(config, &options)
}

/// The repository's `plugins/` loaded as capmux loads its bundled folder: each package
/// holds the permissions it declares.
pub fn load_bundled(cwd: &Path) -> capmux::Loaded {
    let mut config = Config::parse("", &cwd.join("capmux-test-config.toml")).expect("config");
    config.user_packages = false;
    config.plugins_dir = Some(repo().join("plugins"));
    let options = Options {
        cwd: cwd.to_path_buf(),
        ..Options::default()
    };
    capmux::load_with(config, &options)
}

/// A server over the bundled `plugins/`.
pub fn bundled_server(cwd: &Path) -> Server {
    let loaded = load_bundled(cwd);
    Server::new(loaded.pool, &loaded.config, cwd.to_path_buf())
}

/// A server over `roots`.
pub fn server(roots: &[PathBuf], config_toml: &str, cwd: &Path) -> Server {
    let loaded = load(roots, config_toml, cwd);
    Server::new(loaded.pool, &loaded.config, cwd.to_path_buf())
}

pub type Client = RunningService<RoleClient, ClientConfig>;

/// Connects a client named `client_name` to `server` over an in-memory duplex pair.
pub async fn connect(server: Server, client_name: &str) -> Client {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new(client_name, "1.0.0"),
    )
    .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
    info.serve(client_io).await.expect("client initializes")
}

/// The built `capmux` binary with HOME and the XDG folders in `home`, so that neither the
/// developer's config nor their packages are read.
pub fn capmux(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_capmux"));
    command
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env_remove("CAPMUX_CONFIG")
        .env_remove("CAPMUX_LOG");
    command
}

/// The text of every text content block of a tool result, joined by newlines.
pub fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Copies a fixture tree into `to`, so a test can add links or large files to it.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read fixture folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// Whether `pid` is gone (or a zombie nobody will run again), waiting up to 3 s.
pub fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let dead = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z')),
        };
        if dead {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid a test process wrote into `path`, waiting up to 5 s for it.
pub fn read_pid(path: PathBuf) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Calls the tool `name` with `arguments` (a JSON object) and returns its result.
pub async fn call(
    client: &rmcp::Peer<rmcp::RoleClient>,
    name: &str,
    arguments: serde_json::Value,
) -> rmcp::model::CallToolResult {
    let serde_json::Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(
            rmcp::model::CallToolRequestParams::new(name.to_owned()).with_arguments(arguments),
        )
        .await
        .expect("tools/call answered")
}

/// Whether a tool result is a tool error.
pub fn is_error(result: &rmcp::model::CallToolResult) -> bool {
    result.is_error == Some(true)
}
