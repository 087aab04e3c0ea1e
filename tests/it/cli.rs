//! The built binary as a user runs it: `check`, `list`, `tools`, `call`, `prompt`, and
//! `serve` with nothing but MCP on stdout and a clean exit on stdin EOF and on SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{self, capmux};

fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.output().expect("capmux runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_passes_the_bundled_plugins() {
    let home = tempfile::tempdir().expect("tempdir");
    let (code, stdout, _) = run(capmux(home.path())
        .arg("check")
        .arg(support::repo().join("plugins")));
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("checked capmux-plugin-text-tools 1.0.0 (native): 4 tools"),
        "{stdout}"
    );
    assert!(stdout.ends_with("0 errors, 0 warnings\n"), "{stdout}");
}

#[test]
fn check_passes_a_package_whose_hook_waits_for_a_grant() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = support::package(
        home.path(),
        "capmux-plugin-audit",
        json!({ "manifestVersion": 1, "permissions": ["shell:execute"],
                "hooks": [{ "event": "beforeToolCall", "command": ["sh", "audit.sh"] }] }),
        &[("audit.sh", "exit 0")],
    );
    let (code, stdout, _) = run(capmux(home.path()).arg("check").arg(&root));
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("warning:") && stdout.contains("has not been granted `shell:execute`"),
        "{stdout}"
    );
    assert!(stdout.ends_with("0 errors, 1 warnings\n"), "{stdout}");
}

#[test]
fn a_package_named_twice_is_one_package() {
    let home = tempfile::tempdir().expect("tempdir");
    let plugin = support::repo().join("plugins/text-tools");
    let (code, stdout, _) = run(capmux(home.path())
        .arg("--package")
        .arg(&plugin)
        .arg("check")
        .arg(&plugin));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.ends_with("0 errors, 0 warnings\n"), "{stdout}");
}

#[test]
fn check_fails_on_a_broken_package_and_says_where() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = home.path().join("broken");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(
        root.join("package.json"),
        "{\n  \"name\": \"x\",\n  \"capmux\": {,}\n}\n",
    )
    .expect("write");
    let (code, stdout, _) = run(capmux(home.path())
        .current_dir(home.path())
        .args(["check", "broken"]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.starts_with("error: broken/package.json:3: [broken] invalid JSON: key must be a string at line 3 column 14"), "{stdout}");
    assert!(stdout.ends_with("1 errors, 0 warnings\n"));
}

#[test]
fn list_and_tools_show_the_bundled_packages_from_the_working_directory() {
    let home = tempfile::tempdir().expect("tempdir");
    let (code, stdout, _) = run(capmux(home.path()).current_dir(support::repo()).arg("list"));
    assert_eq!(code, 0);
    for id in [
        "capmux-plugin-house-rules",
        "capmux-plugin-notes",
        "capmux-plugin-text-tools",
    ] {
        assert!(stdout.contains(id), "{stdout}");
    }
    let (code, stdout, _) = run(capmux(home.path())
        .current_dir(support::repo())
        .args(["tools", "--json"]));
    assert_eq!(code, 0);
    let tools: Vec<Value> = serde_json::from_str(&stdout).expect("json");
    let word_count = tools
        .iter()
        .find(|t| t["name"] == "text-tools__word_count")
        .expect("word_count");
    assert_eq!(word_count["origin"], "capmux-plugin-text-tools: word_count");
}

#[test]
fn call_prints_the_result_and_exits_non_zero_on_a_tool_error() {
    let home = tempfile::tempdir().expect("tempdir");
    let repo = support::repo();
    let (code, stdout, _) = run(capmux(home.path()).current_dir(&repo).args([
        "call",
        "text-tools__word_count",
        r#"{"text": "hello brave new world"}"#,
    ]));
    assert_eq!(code, 0);
    assert!(stdout.starts_with("4 words"), "{stdout}");
    let (code, _, stderr) = run(capmux(home.path())
        .current_dir(&repo)
        .args(["call", "notes__list_notes"]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("needs the setting `signing_key`"),
        "{stderr}"
    );
    let (code, _, stderr) = run(capmux(home.path())
        .current_dir(&repo)
        .args(["call", "nope__x"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown tool `nope__x`"), "{stderr}");
}

#[test]
fn settings_and_grants_come_from_the_config_file() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("capmux.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[packages.\"capmux-plugin-notes\"]\nsettings = {{ signing_key = \"s3cret\", author = \"ada\" }}\n",
            home.path().join("data").display()
        ),
    )
    .expect("write config");
    let repo = support::repo();
    let add = r#"{"title": "release", "body": "ship 0.1", "tags": ["ops"]}"#;
    let (code, stdout, stderr) = run(capmux(home.path())
        .current_dir(&repo)
        .arg("--config")
        .arg(&config)
        .args(["call", "notes__add_note", add]));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("s3cret"));
    let (code, stdout, _) = run(capmux(home.path())
        .current_dir(&repo)
        .arg("--config")
        .arg(&config)
        .args(["call", "notes__verify_notes"]));
    assert_eq!(code, 0);
    assert!(stdout.contains('1'), "{stdout}");
    assert!(
        home.path().join("data/notes/notes.jsonl").is_file(),
        "the note lives in ${{pluginData}}"
    );

    std::fs::write(&config, "grant = []\n").expect("write config");
    let (code, _, stderr) = run(capmux(home.path()).arg("--config").arg(&config).arg("list"));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("line 1") && stderr.contains("grant"),
        "{stderr}"
    );
}

#[test]
fn prompt_prints_the_merged_system_prompt_per_provider() {
    let home = tempfile::tempdir().expect("tempdir");
    let repo = support::repo();
    let (_, generic, _) = run(capmux(home.path()).current_dir(&repo).arg("prompt"));
    let (_, gemini, _) =
        run(capmux(home.path())
            .current_dir(&repo)
            .args(["prompt", "--provider", "gemini"]));
    assert!(generic.starts_with("# House Rules\n\nHouse rules:"));
    assert!(gemini.len() > generic.len());
}

#[test]
fn a_new_package_passes_check_and_its_tool_runs() {
    let home = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = run(capmux(home.path())
        .current_dir(home.path())
        .args(["new", "jira-helper"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("created "), "{stdout}");
    let root = home.path().join("jira-helper");
    let (code, stdout, _) = run(capmux(home.path()).arg("check").arg(&root));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.ends_with("1 tools, 1 prompts, 1 system prompts, 1 skills, 0 servers, 0 hooks\n0 errors, 0 warnings\n"), "{stdout}");

    let config = home.path().join("capmux.toml");
    std::fs::write(
        &config,
        "[packages.\"capmux-plugin-jira-helper\"]\ngrants = [\"shell:execute\"]\n",
    )
    .expect("config");
    let (code, stdout, stderr) = run(capmux(home.path())
        .arg("--config")
        .arg(&config)
        .arg("--package")
        .arg(&root)
        .args([
            "--no-bundled",
            "call",
            "jira-helper__greet",
            r#"{"who": "Ada"}"#,
        ]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "Hello, Ada!\n");

    let before = std::fs::read(root.join("package.json")).expect("manifest");
    let (code, _, stderr) = run(capmux(home.path())
        .current_dir(home.path())
        .args(["new", "jira-helper"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("exists already"), "{stderr}");
    assert_eq!(
        std::fs::read(root.join("package.json")).expect("manifest"),
        before,
        "left untouched"
    );
    let (code, _, stderr) = run(capmux(home.path())
        .current_dir(home.path())
        .args(["new", "Jira_Helper"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("not a usable package name"), "{stderr}");
}

#[test]
fn every_command_has_help_with_an_example() {
    let home = tempfile::tempdir().expect("tempdir");
    for command in [
        "serve",
        "check",
        "list",
        "tools",
        "call",
        "prompt",
        "compose",
        "after-response",
        "new",
        "schema",
    ] {
        let (code, stdout, _) = run(capmux(home.path()).args([command, "--help"]));
        assert_eq!(code, 0);
        assert!(
            stdout.contains("Example"),
            "{command} --help has no example"
        );
    }
}

/// Starts `capmux serve` on the bundled plugins with piped stdio.
fn serve(home: &std::path::Path) -> std::process::Child {
    capmux(home)
        .current_dir(support::repo())
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts")
}

fn wait_with_deadline(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn serve_writes_only_mcp_to_stdout_and_exits_on_stdin_eof() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = serve(home.path());
    let mut stdin = child.stdin.take().expect("stdin");
    let requests = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "text-tools__word_count", "arguments": {"text": "a b"}}}),
    ];
    for request in &requests {
        writeln!(stdin, "{request}").expect("write");
    }
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut answered = 0;
    while answered < 3 {
        let line = lines.next().expect("a line").expect("utf-8");
        let message: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON on stdout: {line}"));
        assert_eq!(message["jsonrpc"], "2.0");
        if message.get("id").is_some() {
            answered += 1;
        }
        if message["id"] == 1 {
            assert_eq!(message["result"]["protocolVersion"], "2025-06-18");
        }
        if message["id"] == 3 {
            assert!(
                message["result"]["content"][0]["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("2 words"))
            );
        }
    }
    drop(stdin);
    let status =
        wait_with_deadline(&mut child, Duration::from_secs(5)).expect("exits after stdin EOF");
    assert!(status.success());
    assert!(lines.next().is_none(), "nothing after the last answer");
}

#[test]
fn serve_exits_cleanly_on_sigterm() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = serve(home.path());
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    // Wait until it serves, so the signal handler is installed.
    let ready = stderr
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("serving MCP on stdio"));
    assert!(ready);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    let status = wait_with_deadline(&mut child, Duration::from_secs(2))
        .expect("exits within 2 s of SIGTERM");
    assert!(status.success(), "{status:?}");
}
