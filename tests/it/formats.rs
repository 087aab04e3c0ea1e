//! Packages of other agents' formats (`tests/fixtures/formats/`): Claude Code plugins and a
//! marketplace, a Gemini CLI extension, an AionUi extension, a Codex plugin and config, and
//! one folder with two formats. Each is loaded and served with every grant, and both the
//! normalised package and the MCP view are compared with `tests/snapshots/formats/`
//! (`CAPMUX_BLESS=1` rewrites them). The fixtures' servers are `tiny_mcp.py`, a small real
//! MCP server, copied into each fixture as `server.py`.

use std::path::{Path, PathBuf};

use rmcp::model::GetPromptRequestParams;
use serde_json::{Value, json};

use crate::support::{self, call, capmux, is_error, text_of};

fn fixtures() -> PathBuf {
    support::repo().join("tests/fixtures/formats")
}

/// The fixture `name` copied to `dir` with `server.py` in its root.
pub fn stage(dir: &Path, name: &str) -> PathBuf {
    let from = fixtures().join(name);
    if from.is_file() {
        let to = dir.join(name);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("create folder");
        std::fs::copy(&from, &to).expect("copy fixture");
        std::fs::copy(
            fixtures().join("tiny_mcp.py"),
            to.with_file_name("server.py"),
        )
        .expect("copy server");
        return to;
    }
    let to = dir.join(name);
    support::copy_tree(&from, &to);
    std::fs::copy(fixtures().join("tiny_mcp.py"), to.join("server.py")).expect("copy server");
    to
}

/// A config granting `ids` everything and setting `settings` (TOML lines) for the first.
pub fn grants(ids: &[&str], settings: &str) -> String {
    let mut out = String::new();
    for (i, id) in ids.iter().enumerate() {
        out.push_str(&format!(
            "[packages.\"{id}\"]\ngrants = [\"mcp:server\", \"shell:execute\", \"fs:read\"]\n"
        ));
        if i == 0 && !settings.is_empty() {
            out.push_str(&format!("[packages.\"{id}\".settings]\n{settings}\n"));
        }
    }
    out
}

/// `value` with `root` written as `<root>`, so a snapshot does not depend on the temp folder.
fn relative(value: Value, root: &Path) -> Value {
    let text = value.to_string();
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let text = text.replace(&root.display().to_string(), "<root>");
    serde_json::from_str(&text).expect("still JSON")
}

/// Compares `value` with the snapshot `name`, or writes it when `CAPMUX_BLESS` is set.
fn snapshot(name: &str, value: &Value) {
    let path = support::repo()
        .join("tests/snapshots/formats")
        .join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(value).expect("serializes") + "\n";
    if std::env::var_os("CAPMUX_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create folder");
        std::fs::write(&path, &text).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != text {
        let new = path.with_extension("json.new");
        let _ = std::fs::write(&new, &text);
        panic!(
            "{} differs from what capmux now gives (written to {}); review the difference and rerun with CAPMUX_BLESS=1 to accept it",
            path.display(),
            new.display()
        );
    }
}

/// The normalised packages and every diagnostic of loading `root` with all grants.
fn normalised(root: &Path, dir: &Path, ids: &[&str]) -> Value {
    let loaded = support::load(&[root.to_path_buf()], &grants(ids, ""), dir);
    let packages: Vec<Value> = loaded
        .pool
        .packages
        .iter()
        .map(|a| serde_json::to_value(&a.package).expect("package serializes"))
        .collect();
    let mut diagnostics: Vec<String> = loaded
        .pool
        .diagnostics
        .iter()
        .chain(&loaded.diagnostics)
        .map(ToString::to_string)
        .collect();
    diagnostics.sort();
    diagnostics.dedup();
    relative(
        json!({ "packages": packages, "diagnostics": diagnostics }),
        dir,
    )
}

/// What an MCP client sees of `root` served with all grants.
async fn mcp_view(root: &Path, dir: &Path, ids: &[&str], settings: &str) -> Value {
    let server = support::server(&[root.to_path_buf()], &grants(ids, settings), dir);
    let client = support::connect(server, "test-client").await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    let resources = client.list_all_resources().await.expect("resources/list");
    let instructions = client
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .unwrap_or_default();
    let view = json!({
        "tools": tools.iter().map(|t| json!({"name": t.name, "description": t.description})).collect::<Vec<_>>(),
        "prompts": prompts.iter().map(|p| json!({
            "name": p.name,
            "description": p.description,
            "arguments": p.arguments.iter().flatten().map(|a| json!({"name": a.name, "description": a.description, "required": a.required})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "resources": resources.iter().map(|r| r.uri.clone()).collect::<Vec<_>>(),
        "instructions": instructions,
    });
    let _ = client.cancel().await;
    relative(view, dir)
}

/// Loads, serves and snapshots the fixture `name`; returns the folder it was staged in.
async fn check_fixture(name: &str, ids: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = stage(dir.path(), name);
    let snap = name.replace('/', "-");
    snapshot(
        &format!("{snap}.package"),
        &normalised(&root, dir.path(), ids),
    );
    snapshot(
        &format!("{snap}.mcp"),
        &mcp_view(&root, dir.path(), ids, "").await,
    );
    let check = capmux(dir.path())
        .args(["check"])
        .arg(&root)
        .output()
        .expect("capmux check runs");
    let out = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "capmux check {name} failed:\n{out}");
    assert!(out.contains("\n0 errors"), "{out}");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claude_code_plugin_is_every_part_it_has() {
    check_fixture("claude-plugin", &["review-kit"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claude_code_plugin_without_manifest_is_named_by_its_folder() {
    check_fixture("claude-bare", &["claude-bare"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claude_code_marketplace_is_its_local_plugins() {
    check_fixture("claude-marketplace", &["alpha", "beta-skills", "gamma"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gemini_cli_extension_is_every_part_it_has() {
    check_fixture("gemini-extension", &["gem-tools"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aionui_extension_is_every_part_it_has() {
    check_fixture("aion-extension", &["aion-helper"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_codex_plugin_and_config_are_every_part_they_have() {
    check_fixture("codex-plugin", &["codex-kit"]).await;
    check_fixture("codex-config/config.toml", &["codex-config/config.toml"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_with_two_formats_serves_each_item_once() {
    let dir = check_fixture("multi-format", &["dual"]).await;
    let loaded = support::load(
        &[dir.path().join("multi-format")],
        &grants(&["dual"], ""),
        dir.path(),
    );
    let package = &loaded.pool.packages[0].package;
    let names = |v: Vec<&str>| v.join(",");
    assert_eq!(
        names(package.prompts.iter().map(|p| p.name.as_str()).collect()),
        "review"
    );
    assert_eq!(
        names(
            package
                .mcp_servers
                .iter()
                .map(|s| s.name.as_str())
                .collect()
        ),
        "tiny,extra"
    );
    assert_eq!(
        names(package.skills.iter().map(|s| s.name.as_str()).collect()),
        "shared"
    );
    assert_eq!(package.hooks.len(), 2, "hooks/hooks.json is read once");
}

/// Gets prompt `name` with `arguments`, as text.
async fn prompt(client: &support::Client, name: &str, arguments: Value) -> String {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    let result = client
        .get_prompt(GetPromptRequestParams::new(name).with_arguments(arguments))
        .await
        .expect("prompts/get");
    result
        .messages
        .iter()
        .filter_map(|m| m.content.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claude_code_hook_script_blocks_a_child_tool_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = stage(dir.path(), "claude-plugin");
    let server = support::server(
        &[root],
        &grants(&["review-kit"], "token = \"s3cret\""),
        dir.path(),
    );
    let client = support::connect(server, "test-client").await;

    let blocked = call(
        &client,
        "review-kit__echo",
        json!({"text": "a forbidden word"}),
    )
    .await;
    assert!(is_error(&blocked));
    assert!(
        text_of(&blocked).contains("review-kit guard: forbidden word in review-kit__echo"),
        "{}",
        text_of(&blocked)
    );
    let fine = call(&client, "review-kit__echo", json!({"text": "all good"})).await;
    assert_eq!(text_of(&fine), "all good");

    // ${TINY_GREETING:-hello} and ${user_config.api_base} (its default) reach the server;
    // the PostToolUse hook adds its context.
    let greet = call(&client, "review-kit__greet", json!({})).await;
    let text = text_of(&greet);
    assert!(
        text.starts_with("hello https://api.example.invalid"),
        "{text}"
    );
    assert!(text.contains("greeted by review-kit"), "{text}");
    let _ = client.cancel().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gemini_beforetool_hook_blocks_and_settings_reach_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = stage(dir.path(), "gemini-extension");
    let settings = "API_BASE = \"https://gem.example.invalid\"";
    let server = support::server(&[root], &grants(&["gem-tools"], settings), dir.path());
    let client = support::connect(server, "test-client").await;

    let tools: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(
        !tools.iter().any(|t| t.contains("echo_hidden")),
        "excludeTools: {tools:?}"
    );
    let blocked = call(&client, "gem-tools__echo", json!({"text": "forbidden"})).await;
    assert!(is_error(&blocked));
    assert!(
        text_of(&blocked).contains("gem-tools: forbidden word"),
        "{}",
        text_of(&blocked)
    );
    assert_eq!(
        text_of(&call(&client, "gem-tools__echo", json!({"text": "ok"})).await),
        "ok"
    );
    let greet = text_of(&call(&client, "gem-tools__greet", json!({})).await);
    assert!(
        greet.starts_with("gem https://gem.example.invalid"),
        "{greet}"
    );
    assert!(greet.contains("after greet"), "{greet}");
    let _ = client.cancel().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slash_commands_fill_their_arguments_and_run_inline_commands_only_when_granted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let claude = stage(dir.path(), "claude-plugin");
    let gemini = stage(dir.path(), "gemini-extension");
    std::fs::write(dir.path().join("README.md"), "the needle is here\n").expect("write");
    let config = grants(&["gem-tools"], "");
    let loaded = support::load(&[claude, gemini], &config, dir.path());
    let server = capmux::Server::new(loaded.pool, &loaded.config, dir.path().to_path_buf());
    let client = support::connect(server, "test-client").await;

    let review = prompt(
        &client,
        "review-kit__review",
        json!({"arguments": "12 high"}),
    )
    .await;
    assert_eq!(
        review,
        "Review PR #12 with priority high. Focus on correctness."
    );
    let zero = prompt(
        &client,
        "review-kit__zero",
        json!({"arguments": "a \"b c\" d"}),
    )
    .await;
    assert_eq!(
        zero,
        "First: a, second: b c, all: a \"b c\" d, third via index: d"
    );
    let named = prompt(
        &client,
        "review-kit__named",
        json!({"file": "a.rs", "mode": "fast"}),
    )
    .await;
    assert_eq!(named, "Check a.rs in fast mode.");
    let component = prompt(
        &client,
        "review-kit__component",
        json!({"arguments": "Button"}),
    )
    .await;
    assert!(
        component.starts_with("Create a React component named Button."),
        "{component}"
    );
    // review-kit holds no shell:execute here: its inline command stays text.
    let status = prompt(&client, "review-kit__status", json!({})).await;
    assert!(status.contains("!`git status --short`"), "{status}");

    let sync = prompt(&client, "gem-tools__gcs_sync", json!({"args": "my-bucket"})).await;
    assert!(sync.contains("my-bucket"), "{sync}");
    let plain = prompt(&client, "gem-tools__plain", json!({"args": "briefly"})).await;
    assert_eq!(plain, "Explain the repository layout.\n\nbriefly");
    // gem-tools holds shell:execute and fs:read: `!{grep …}` runs in the workspace and
    // `@{README.md}` is read from it.
    let grep = prompt(&client, "gem-tools__grep", json!({"args": "needle"})).await;
    assert!(grep.contains("README.md:1:the needle is here"), "{grep}");
    let readme = prompt(&client, "gem-tools__readme", json!({})).await;
    assert!(
        readme.contains("Summarise this file: the needle is here"),
        "{readme}"
    );
    let _ = client.cancel().await;
}

#[test]
fn broken_manifests_are_diagnostics_with_file_and_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create folder");
        std::fs::write(path, text).expect("write");
    };
    write(
        "bad-claude/.claude-plugin/plugin.json",
        "{\"name\": \"bad\",\n\"commands\": 3,",
    );
    write("bad-claude/commands/ok.md", "Fine.");
    write(
        "bad-gemini/gemini-extension.json",
        "{\"name\": \"g\", \"mcpServers\": {\"x\": {\"command\": 1}}}",
    );
    write("bad-gemini/commands/broken.toml", "prompt = ");
    write(
        "bad-gemini/hooks/hooks.json",
        "{\"hooks\": {\"BeforeTool\": [{\"hooks\": [{\"type\": \"command\"}]}]}}",
    );
    write(
        "bad-aion/aion-extension.json",
        "{\"name\": \"a\", \"contributes\": {\"skills\": [{\"name\": \"s\", \"file\": \"../x.md\"}]}}",
    );
    let roots: Vec<PathBuf> = ["bad-claude", "bad-gemini", "bad-aion"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    let loaded = support::load(&roots, "", dir.path());
    let all: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
    let has = |file: &str, text: &str| {
        assert!(
            all.iter().any(|d| d.contains(file) && d.contains(text)),
            "no diagnostic on {file} with `{text}` in:\n{}",
            all.join("\n")
        );
    };
    has("plugin.json:2", "invalid JSON");
    has(
        "gemini-extension.json",
        "mcpServers.x.command: expected a string",
    );
    has("broken.toml", "invalid TOML");
    has("hooks.json", "`command` is required");
    has("aion-extension.json", "leaves the package root");
    // The broken manifest loses nothing else: the Claude plugin still has its command.
    let bad = loaded
        .pool
        .packages
        .iter()
        .find(|a| a.package.id == "bad-claude")
        .expect("loaded");
    assert_eq!(bad.package.prompts.len(), 1);
    assert_eq!(loaded.pool.packages.len(), 3);
}

#[test]
fn capmux_list_shows_the_format_and_the_marketplace_remote_entries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = stage(dir.path(), "claude-marketplace");
    let out = capmux(dir.path())
        .args(["--no-bundled", "--package"])
        .arg(&root)
        .arg("list")
        .output()
        .expect("capmux list runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for wanted in [
        "alpha",
        "beta-skills",
        "gamma",
        "claude-plugin",
        "remote-npm",
        "comes from npm",
    ] {
        assert!(text.contains(wanted), "`{wanted}` missing from:\n{text}");
    }
}
