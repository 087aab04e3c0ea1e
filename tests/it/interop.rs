//! Interop with a real client: the official Python `mcp` SDK (pinned in
//! tests/interop/setup.sh) drives `capmux serve` on the bundled plugins and skills over
//! stdio, plus one extra skill whose `outside.md` links to a file outside it (which must
//! never reach the client).
//!
//! The SDK is installed into `target/interop/venv` on first use; a machine that cannot
//! install it fails this test rather than skipping it, so CI never passes without it.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::support::{self, capmux};

/// Runs tests/interop/setup.sh (the pinned SDK and reference servers; fast once installed)
/// and returns the venv's python.
fn interop_python() -> PathBuf {
    let setup = Command::new("bash")
        .arg(support::repo().join("tests/interop/setup.sh"))
        .output()
        .expect("bash runs");
    assert!(
        setup.status.success(),
        "installing the interop dependencies failed:\n{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let stdout = String::from_utf8_lossy(&setup.stdout);
    PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("setup.sh prints the venv python")
            .trim(),
    )
}

/// The interop folder (`<I>/venv/bin/python` → `<I>`) and server-everything's entry point.
fn interop_dir(python: &std::path::Path) -> (PathBuf, PathBuf) {
    let dir = python
        .ancestors()
        .nth(3)
        .expect("the venv is inside the interop folder")
        .to_path_buf();
    let everything =
        dir.join("node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(everything.is_file(), "{} is missing", everything.display());
    (dir, everything)
}

/// Runs an SDK script (with the environment `capmux(..)` sets, which it passes on to the
/// capmux it starts), asserts that it succeeded, and returns its report.
fn run_script(mut client: Command, home: &std::path::Path) -> String {
    with_capmux_env(&mut client, home);
    let output = client.output().expect("the SDK client runs");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    report
}

/// The environment `capmux(..)` sets, on another command.
fn with_capmux_env(command: &mut Command, home: &std::path::Path) {
    for (key, value) in capmux(home).get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
}

#[test]
fn real_servers_from_npm_and_pypi_work_as_children_for_the_python_sdk() {
    let python = interop_python();
    let (dir, everything) = interop_dir(&python);
    let home = tempfile::tempdir().expect("tempdir");
    let servers = home.path().join("servers.json");
    std::fs::write(
        &servers,
        json!({ "mcpServers": {
            "everything": { "command": "node", "args": [everything, "stdio"] },
            "time": { "command": dir.join("venv/bin/mcp-server-time"), "args": ["--local-timezone", "UTC"] },
        }})
        .to_string(),
    )
    .expect("write servers.json");
    let mut client = Command::new(&python);
    client
        .arg(support::repo().join("tests/interop/children_client.py"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_capmux"))
        .args(["--no-bundled", "--package"])
        .arg(&servers)
        .arg("serve");
    let report = run_script(client, home.path());
    assert!(report.contains(" 0 failed"), "{report}");
    assert!(!report.contains("FAIL"), "{report}");
}

#[test]
fn http_and_sse_children_are_reached_over_the_network() {
    let python = interop_python();
    let (_, everything) = interop_dir(&python);
    for (mode, path, kind) in [("streamableHttp", "/mcp", "http"), ("sse", "/sse", "sse")] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Command::new("node")
            .arg(&everything)
            .arg(mode)
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start server-everything");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{mode}: no listener"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let home = tempfile::tempdir().expect("tempdir");
        let servers = home.path().join("servers.json");
        std::fs::write(
            &servers,
            json!({ "mcpServers": { "remote": {
                "type": kind, "url": format!("http://127.0.0.1:{port}{path}")
            }}})
            .to_string(),
        )
        .expect("write servers.json");
        let output = capmux(home.path())
            .args(["--no-bundled", "--package"])
            .arg(&servers)
            .args(["call", "remote__get-sum", r#"{"a": 40, "b": 2}"#])
            .output()
            .expect("run capmux call");
        let _ = server.kill();
        let _ = server.wait();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("42"),
            "{mode}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_python_sdk_client_lists_calls_and_reads_everything() {
    let repo = support::repo();
    let python = interop_python();
    let home = tempfile::tempdir().expect("tempdir");
    // A skill collection with one skill, `linky`, whose outside.md links to a file
    // outside the skill; the marker in that file must appear in no answer.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let marker = format!("capmux-link-marker-{}-{nanos}", std::process::id());
    let secret = home.path().join("secret.md");
    std::fs::write(&secret, format!("Outside the skill: {marker}\n")).expect("write secret");
    let extra = home.path().join("extra-skills");
    let linky = extra.join("linky");
    std::fs::create_dir_all(&linky).expect("skill folder");
    std::fs::write(
        linky.join("SKILL.md"),
        "---\nname: linky\ndescription: A test skill whose outside.md links to a file outside it.\n---\n# Linky\n\nSee outside.md.\n",
    )
    .expect("write SKILL.md");
    std::os::unix::fs::symlink(&secret, linky.join("outside.md")).expect("symlink");

    // The client passes its environment on to the server it spawns; `capmux(..)` only
    // provides that environment (a home without the developer's config or packages).
    let mut client = Command::new(&python);
    client
        .current_dir(&repo)
        .arg(repo.join("tests/interop/sdk_client.py"))
        .arg("--repo")
        .arg(&repo)
        .args([
            "--link-skill",
            "extra-skills__linky",
            "--link-marker",
            marker.as_str(),
        ])
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_capmux"))
        .arg("--package")
        .arg(&extra)
        .arg("serve");
    let report = run_script(client, home.path());
    assert!(report.contains("\n20 passed, 0 failed"), "{report}");
}

#[test]
fn packages_of_every_format_work_for_the_python_sdk() {
    let python = interop_python();
    let home = tempfile::tempdir().expect("tempdir");
    let ids = ["review-kit", "gem-tools", "aion-helper", "codex-kit"];
    let config = home.path().join("config.toml");
    std::fs::write(&config, crate::formats::grants(&ids, "")).expect("write config");
    let mut client = Command::new(&python);
    client
        .arg(support::repo().join("tests/interop/formats_client.py"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_capmux"))
        .arg("--no-bundled")
        .arg("--config")
        .arg(&config);
    for name in [
        "claude-plugin",
        "gemini-extension",
        "aion-extension",
        "codex-plugin",
    ] {
        client
            .arg("--package")
            .arg(crate::formats::stage(home.path(), name));
    }
    client.arg("serve");
    let report = run_script(client, home.path());
    assert!(report.contains("7 passed, 0 failed"), "{report}");
}

#[test]
fn an_install_and_a_removal_reach_a_connected_client() {
    let python = interop_python();
    let home = tempfile::tempdir().expect("tempdir");
    let tool = json!({ "name": "hello", "description": "says hello", "inputSchema": {"type": "object"},
                       "command": ["python3", "hello.py"] });
    let package = support::package(
        &home.path().join("src"),
        "greeter",
        json!({ "permissions": ["shell:execute"], "tools": [tool] }),
        &[("hello.py", "print('hello from an installed package')\n")],
    );
    let mut client = Command::new(&python);
    client
        .current_dir(home.path())
        .arg(support::repo().join("tests/interop/reload_client.py"))
        .args(["--capmux", env!("CARGO_BIN_EXE_capmux"), "--package"])
        .arg(&package)
        .args([
            "--tool",
            "greeter__hello",
            "--expect",
            "hello from an installed package",
        ])
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_capmux"))
        .args(["--no-bundled", "serve"]);
    let report = run_script(client, home.path());
    assert!(report.contains("3 passed, 0 failed"), "{report}");
}

/// The npm MCP server installed and called here (pinned; fetched from the npm registry,
/// its dependencies installed with scripts off).
const NPM_SERVER: &str = "@modelcontextprotocol/server-everything@2026.8.31";

#[test]
fn a_published_npm_mcp_server_installs_and_its_tool_answers() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    // npm's cache under target/ makes the second run fast and keeps the user's cache clean.
    let cache = support::repo().join("target/interop/npm-cache");
    let run = |args: &[&str]| {
        let out = capmux(h)
            .current_dir(h)
            .env("npm_config_cache", &cache)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("capmux runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "capmux {args:?}:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let installed = run(&["install", NPM_SERVER, "--yes"]);
    assert!(installed.contains("(npm-server)"), "{installed}");
    let registry: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(h.join("data/capmux/registry.json")).expect("registry"),
    )
    .expect("registry JSON");
    let entry = &registry["packages"]["@modelcontextprotocol/server-everything"];
    assert_eq!(entry["version"], "2026.8.31");
    assert!(
        entry["integrity"]
            .as_str()
            .unwrap_or("")
            .starts_with("sha512-"),
        "{entry}"
    );
    let answer = run(&[
        "--no-bundled",
        "call",
        "server-everything__get-sum",
        r#"{"a": 40, "b": 2}"#,
    ]);
    assert!(answer.contains("42"), "{answer}");
}
