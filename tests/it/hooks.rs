//! Hooks through the real server and the built binary: Claude Code, Gemini CLI and shell
//! hook scripts that block, rewrite arguments and results, or add context around tools,
//! prompts, resources and sessions; the chain's order and its stop on a block; matchers;
//! timeouts and the failure policy; permissions; the host API (`compose`,
//! `after-response`); in-process and HTTP hooks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capmux::hooks::{BoxFuture, Decision, Hook, HookError, HookEvent, HookHandler, Matcher};
use capmux::{Server, Severity};
use rmcp::ServiceError;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ErrorCode, ErrorData, GetPromptRequestParams,
    GetPromptResult, ReadResourceRequestParams, ResourceContents,
};
use serde_json::{Map, Value, json};
use tempfile::TempDir;

use crate::support::{self, Client, call, capmux, connect, gone, is_error, read_pid, text_of};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A file or folder of `tests/fixtures/hooks`.
fn fixture(rel: &str) -> PathBuf {
    support::repo().join("tests/fixtures/hooks").join(rel)
}

/// The test tool `run`: marks that it ran (`tool-ran` in the workspace) and echoes its
/// arguments.
fn run_tool() -> Value {
    json!({ "name": "run", "description": "echoes its arguments",
            "inputSchema": { "type": "object" }, "command": ["sh", "hooks/tool.sh"] })
}

/// A native package `id` under `dir` with every fixture script in `hooks/`; `manifest` is
/// its `capmux` object, to which `manifestVersion` is added.
fn package(dir: &Path, id: &str, manifest: Value) -> PathBuf {
    let mut manifest = manifest;
    manifest["manifestVersion"] = json!(1);
    let root = support::package(dir, id, manifest, &[]);
    support::copy_tree(&fixture("scripts"), &root.join("hooks"));
    root
}

/// A package holding `shell:execute`, the tool `run` and `hooks`.
fn tool_package(dir: &Path, id: &str, hooks: Value) -> PathBuf {
    package(
        dir,
        id,
        json!({ "permissions": ["shell:execute"], "tools": [run_tool()], "hooks": hooks }),
    )
}

/// Config lines granting `permissions` to each package of `ids`.
fn grants(ids: &[&str], permissions: &[&str]) -> String {
    let list: Vec<String> = permissions.iter().map(|p| format!("\"{p}\"")).collect();
    ids.iter()
        .map(|id| format!("[packages.\"{id}\"]\ngrants = [{}]\n", list.join(", ")))
        .collect()
}

/// A server over `roots`, each package granted `shell:execute`, and the workspace `home`.
fn server(home: &Path, roots: &[PathBuf], ids: &[&str]) -> Server {
    support::server(roots, &grants(ids, &["shell:execute"]), home)
}

/// One package `capmux-plugin-guard` (namespace `guard`) with the tool `run` and `hooks`,
/// and a client on it.
async fn guard(hooks: Value) -> (TempDir, Client) {
    let home = tempfile::tempdir().expect("tempdir");
    let root = tool_package(home.path(), "capmux-plugin-guard", hooks);
    let server = server(home.path(), &[root], &["capmux-plugin-guard"]);
    let client = connect(server, "test").await;
    (home, client)
}

/// The arguments the test tool received: its echo, parsed.
fn echoed(result: &CallToolResult) -> Value {
    assert!(!is_error(result), "the tool failed: {}", text_of(result));
    let first = result.content[0].as_text().expect("a text block");
    serde_json::from_str(&first.text).expect("the tool echoes JSON")
}

fn tool_ran(home: &Path) -> bool {
    home.join("tool-ran").exists()
}

/// The lines of a log file in the workspace (none when it does not exist).
fn log_lines(home: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(home.join(name))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The events `emit.py` recorded.
fn recorded_events(home: &Path) -> Vec<Value> {
    log_lines(home, "events.jsonl")
        .iter()
        .map(|l| serde_json::from_str(l).expect("a recorded event"))
        .collect()
}

fn mcp_error(err: ServiceError) -> ErrorData {
    match err {
        ServiceError::McpError(e) => e,
        other => panic!("expected an MCP error, got {other}"),
    }
}

fn message_text(result: &GetPromptResult, index: usize) -> String {
    result.messages[index]
        .content
        .as_text()
        .map(|t| t.text.clone())
        .expect("a text message")
}

// ---------------------------------------------------------------------------------------
// Blocking a tool call
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_claude_code_pretooluse_deny_blocks_the_call_and_the_tool_never_runs() {
    let (home, client) = guard(json!([
        { "event": "beforeToolCall", "matcher": "guard__run",
          "command": ["python3", "hooks/claude_deny.py"] }
    ]))
    .await;
    let result = call(&client, "guard__run", json!({ "command": "rm -rf /" })).await;
    assert!(is_error(&result));
    assert_eq!(
        text_of(&result),
        "blocked by a hook of package `capmux-plugin-guard`: rm -rf is not allowed in guard__run"
    );
    assert!(
        !tool_ran(home.path()),
        "the tool ran although it was blocked"
    );

    let result = call(&client, "guard__run", json!({ "command": "ls" })).await;
    assert_eq!(echoed(&result), json!({ "command": "ls" }));
    assert!(tool_ran(home.path()));
}

#[tokio::test]
async fn a_gemini_cli_deny_decision_blocks_the_call() {
    let (home, client) = guard(json!([
        { "event": "beforeToolCall", "command": ["python3", "hooks/gemini_deny.py"] }
    ]))
    .await;
    let result = call(&client, "guard__run", json!({ "path": "/etc/passwd" })).await;
    assert!(is_error(&result));
    assert_eq!(
        text_of(&result),
        "blocked by a hook of package `capmux-plugin-guard`: /etc/passwd is a system file"
    );
    assert!(!tool_ran(home.path()));

    let result = call(&client, "guard__run", json!({ "path": "notes.txt" })).await;
    assert_eq!(
        echoed(&result),
        json!({ "path": "notes.txt" }),
        "decision allow lets the call go on"
    );
}

#[tokio::test]
async fn a_shell_hook_exiting_2_blocks_with_its_stderr_as_the_reason() {
    let (home, client) = guard(json!([
        { "event": "beforeToolCall", "command": ["sh", "hooks/deny.sh"] }
    ]))
    .await;
    let result = call(&client, "guard__run", json!({})).await;
    assert!(is_error(&result));
    assert_eq!(
        text_of(&result),
        "blocked by a hook of package `capmux-plugin-guard`: the workspace is frozen until the release is out"
    );
    assert!(!tool_ran(home.path()));
}

// ---------------------------------------------------------------------------------------
// Rewriting arguments and results
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn updated_input_replaces_the_arguments_the_tool_receives() {
    let (_home, client) = guard(json!([
        { "event": "beforeToolCall", "command": ["python3", "hooks/rewrite.py", "replace"] }
    ]))
    .await;
    let result = call(
        &client,
        "guard__run",
        json!({ "command": "rm -rf /", "keep": true }),
    )
    .await;
    assert_eq!(
        echoed(&result),
        json!({ "command": "ls -la", "replaced_by": "claude" })
    );
}

#[tokio::test]
async fn a_gemini_tool_input_is_merged_into_the_arguments() {
    let (_home, client) = guard(json!([
        { "event": "beforeToolCall", "command": ["python3", "hooks/rewrite.py", "merge"] }
    ]))
    .await;
    let result = call(
        &client,
        "guard__run",
        json!({ "query": "bugs", "limit": 50 }),
    )
    .await;
    assert_eq!(
        echoed(&result),
        json!({ "query": "bugs", "limit": 10, "dry_run": true })
    );
}

#[tokio::test]
async fn updated_tool_output_as_a_string_replaces_the_result() {
    let (home, client) = guard(json!([
        { "event": "afterToolCall", "command": ["python3", "hooks/after_tool.py", "string"] }
    ]))
    .await;
    let arguments = json!({ "secret": "hunter2" });
    let result = call(&client, "guard__run", arguments.clone()).await;
    assert!(tool_ran(home.path()));
    assert!(!is_error(&result));
    assert_eq!(
        text_of(&result),
        format!("redacted {} characters", arguments.to_string().len())
    );
}

#[tokio::test]
async fn updated_tool_output_as_a_call_tool_result_replaces_the_whole_result() {
    let (_home, client) = guard(json!([
        { "event": "afterToolCall", "command": ["python3", "hooks/after_tool.py", "object"] }
    ]))
    .await;
    let result = call(&client, "guard__run", json!({ "secret": "hunter2" })).await;
    assert!(!is_error(&result));
    assert_eq!(text_of(&result), "first block\nsecond block");
    assert_eq!(result.content.len(), 2);
    assert_eq!(
        result.structured_content,
        Some(json!({ "rewritten": true }))
    );
}

#[tokio::test]
async fn additional_context_after_a_tool_call_is_appended_as_a_text_block() {
    let (_home, client) = guard(json!([
        { "event": "afterToolCall", "command": ["python3", "hooks/after_tool.py", "context"] }
    ]))
    .await;
    let result = call(&client, "guard__run", json!({ "n": 1 })).await;
    assert_eq!(
        echoed(&result),
        json!({ "n": 1 }),
        "the result itself is kept"
    );
    assert_eq!(result.content.len(), 2);
    assert_eq!(
        result.content[1].as_text().expect("text").text,
        "note: this output comes from a test tool"
    );
}

#[tokio::test]
async fn hooks_that_decide_nothing_leave_errors_and_structured_results_as_they_were() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = r#"cat > /dev/null; echo '{"success": true, "data": {"n": 4}, "display": {"type": "text", "content": "4 things"}}'"#;
    let root = package(
        home.path(),
        "capmux-plugin-guard",
        json!({ "permissions": ["shell:execute"],
                "tools": [
                    { "name": "fails", "description": "fails",
                      "command": ["sh", "-c", "echo boom >&2; exit 3"] },
                    { "name": "data", "description": "structured",
                      "inputSchema": { "type": "object" }, "command": ["sh", "-c", data] },
                ],
                "hooks": [emit("beforeToolCall", "", json!({})),
                          emit("afterToolCall", "", json!({}))] }),
    );
    let server = server(home.path(), &[root], &["capmux-plugin-guard"]);
    let client = connect(server, "test").await;

    let result = client
        .call_tool(CallToolRequestParams::new("guard__fails"))
        .await
        .expect("tools/call answered");
    assert!(is_error(&result));
    assert_eq!(
        text_of(&result),
        "tool `guard__fails` failed (exit status 3): boom"
    );
    let result = call(&client, "guard__data", json!({ "q": 1 })).await;
    assert!(!is_error(&result));
    assert_eq!(text_of(&result), "4 things");
    assert_eq!(result.structured_content, Some(json!({ "n": 4 })));

    let events = recorded_events(home.path());
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["capmux_event"].as_str().expect("event name"))
        .collect();
    assert_eq!(
        names,
        [
            "beforeToolCall",
            "afterToolCall",
            "beforeToolCall",
            "afterToolCall"
        ]
    );
    assert_eq!(events[1]["hook_event_name"], "PostToolUse");
    assert_eq!(events[1]["tool_response"]["isError"], true);
    assert_eq!(events[3]["tool_input"], json!({ "q": 1 }));
    assert_eq!(
        events[3]["tool_response"]["structuredContent"],
        json!({ "n": 4 })
    );
}

// ---------------------------------------------------------------------------------------
// The chain
// ---------------------------------------------------------------------------------------

/// Packages `capmux-plugin-zulu` (priority `zulu_priority`, links Z1 and Z2, the tool)
/// and `capmux-plugin-alpha` (default priority 100, link A1); `z2` is Z2's extra argument.
async fn chain(zulu_priority: i64, z2: &[&str]) -> (TempDir, Client) {
    let home = tempfile::tempdir().expect("tempdir");
    let link = |label: &str, extra: &[&str]| {
        let mut argv = vec!["python3", "hooks/chain.py", label];
        argv.extend(extra);
        json!({ "event": "beforeToolCall", "command": argv })
    };
    let zulu = package(
        home.path(),
        "capmux-plugin-zulu",
        json!({ "priority": zulu_priority, "permissions": ["shell:execute"],
                "tools": [run_tool()], "hooks": [link("Z1", &[]), link("Z2", z2)] }),
    );
    let alpha = package(
        home.path(),
        "capmux-plugin-alpha",
        json!({ "permissions": ["shell:execute"], "hooks": [link("A1", &[])] }),
    );
    let server = server(
        home.path(),
        &[alpha, zulu],
        &["capmux-plugin-alpha", "capmux-plugin-zulu"],
    );
    (home, connect(server, "test").await)
}

#[tokio::test]
async fn hooks_run_by_package_priority_then_position_each_seeing_the_previous_output() {
    let (home, client) = chain(10, &[]).await;
    let result = call(&client, "zulu__run", json!({ "trail": ["client"] })).await;
    assert_eq!(
        echoed(&result),
        json!({ "trail": ["client", "Z1", "Z2", "A1"] })
    );
    assert_eq!(log_lines(home.path(), "chain.log"), ["Z1", "Z2", "A1"]);
}

#[tokio::test]
async fn packages_of_the_same_priority_run_their_hooks_in_id_order() {
    let (home, client) = chain(100, &[]).await;
    let result = call(&client, "zulu__run", json!({})).await;
    assert_eq!(echoed(&result), json!({ "trail": ["A1", "Z1", "Z2"] }));
    assert_eq!(log_lines(home.path(), "chain.log"), ["A1", "Z1", "Z2"]);
}

#[tokio::test]
async fn a_block_in_the_middle_stops_the_chain() {
    let (home, client) = chain(10, &["block"]).await;
    let result = call(&client, "zulu__run", json!({})).await;
    assert!(is_error(&result));
    assert_eq!(
        text_of(&result),
        "blocked by a hook of package `capmux-plugin-zulu`: Z2 stops here"
    );
    assert_eq!(
        log_lines(home.path(), "chain.log"),
        ["Z1", "Z2"],
        "A1 ran after the block"
    );
    assert!(!tool_ran(home.path()));
}

// ---------------------------------------------------------------------------------------
// Matchers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn matchers_select_tools_by_name_list_pattern_item_name_and_client_name() {
    let home = tempfile::tempdir().expect("tempdir");
    let log = |matcher: &str, label: &str| {
        json!({ "event": "beforeToolCall", "matcher": matcher,
                "command": ["sh", "hooks/log.sh", label] })
    };
    let tool = |name: &str| {
        let mut tool = run_tool();
        tool["name"] = json!(name);
        tool
    };
    let text = package(
        home.path(),
        "capmux-plugin-text",
        json!({ "permissions": ["shell:execute"],
                "tools": [tool("run"), tool("count"), tool("other")],
                "hooks": [log("text__count", "exact"),
                          log("text__count|misc__run", "list"),
                          log("text__.*", "pattern"),
                          log("run", "item"),
                          log("mcp__capmux__misc__.*", "client"),
                          log("nothing_here", "never"),
                          log("", "all")] }),
    );
    let misc = package(
        home.path(),
        "capmux-plugin-misc",
        json!({ "permissions": ["shell:execute"], "tools": [tool("run")] }),
    );
    let server = server(
        home.path(),
        &[text, misc],
        &["capmux-plugin-text", "capmux-plugin-misc"],
    );
    let client = connect(server, "test").await;
    let expected: [(&str, &[&str]); 4] = [
        ("text__run", &["pattern", "item", "all"]),
        ("text__count", &["exact", "list", "pattern", "all"]),
        ("text__other", &["pattern", "all"]),
        // The item name `run` is matched in every package, as the names a hook sees are
        // the public name, the item's own name and the client's name.
        ("misc__run", &["list", "item", "client", "all"]),
    ];
    let ran_log = home.path().join("ran.log");
    for (tool, labels) in expected {
        let _ = std::fs::remove_file(&ran_log);
        let result = call(&client, tool, json!({})).await;
        assert!(!is_error(&result), "{tool}: {}", text_of(&result));
        assert_eq!(
            log_lines(home.path(), "ran.log"),
            labels,
            "hooks run for {tool}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Timeouts and the failure policy
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_hook_past_its_timeout_fails_open_by_default_and_is_killed() {
    let (home, client) = guard(json!([
        { "event": "beforeToolCall", "timeoutMs": 300,
          "command": ["python3", "hooks/sleep.py"] }
    ]))
    .await;
    let started = Instant::now();
    let result = call(&client, "guard__run", json!({ "a": 1 })).await;
    assert_eq!(echoed(&result), json!({ "a": 1 }), "the call goes on");
    assert!(started.elapsed() < Duration::from_secs(10));
    let pid = read_pid(home.path().join("hook.pid"));
    assert!(gone(pid), "the timed-out hook {pid} is still running");
}

#[tokio::test]
async fn a_hook_past_its_timeout_blocks_the_call_when_it_fails_closed() {
    let (home, client) = guard(json!([
        { "event": "beforeToolCall", "timeoutMs": 300, "failOpen": false,
          "command": ["python3", "hooks/sleep.py"] }
    ]))
    .await;
    let result = call(&client, "guard__run", json!({})).await;
    assert!(is_error(&result));
    assert_eq!(
        text_of(&result),
        "blocked by a hook of package `capmux-plugin-guard`: the hook failed (timed out after 300 ms) and is set to fail closed"
    );
    assert!(!tool_ran(home.path()));
    let pid = read_pid(home.path().join("hook.pid"));
    assert!(gone(pid), "the timed-out hook {pid} is still running");
}

#[tokio::test]

async fn a_timed_out_hook_leaves_no_child_process_behind() {
    let (home, client) = guard(json!([
        { "event": "beforeToolCall", "timeoutMs": 300, "command": ["sh", "hooks/sleep.sh"] }
    ]))
    .await;
    let result = call(&client, "guard__run", json!({})).await;
    assert!(!is_error(&result), "{}", text_of(&result));
    let hook = read_pid(home.path().join("hook.pid"));
    let child = read_pid(home.path().join("hook-child.pid"));
    assert!(gone(hook), "the timed-out hook {hook} is still running");
    let survived = !gone(child);
    if survived {
        // Leave nothing behind, even when the assertion below fails.
        let _ = Command::new("kill").arg(child.to_string()).status();
    }
    assert!(
        !survived,
        "the child {child} of the timed-out hook is still running"
    );
}

#[tokio::test]
async fn output_that_is_not_json_lets_the_call_go_on_when_failing_open() {
    let (_home, client) = guard(json!([
        { "event": "beforeToolCall", "command": ["sh", "hooks/garbage.sh"] }
    ]))
    .await;
    let result = call(&client, "guard__run", json!({ "a": 1 })).await;
    assert_eq!(echoed(&result), json!({ "a": 1 }));
}

#[tokio::test]
async fn output_that_is_not_json_blocks_the_call_when_failing_closed() {
    let (home, client) = guard(json!([
        { "event": "beforeToolCall", "failOpen": false, "command": ["sh", "hooks/garbage.sh"] }
    ]))
    .await;
    let result = call(&client, "guard__run", json!({})).await;
    assert!(is_error(&result));
    let text = text_of(&result);
    assert!(
        text.starts_with(
            "blocked by a hook of package `capmux-plugin-guard`: the hook failed (output is not valid JSON"
        ) && text.ends_with("and is set to fail closed"),
        "{text}"
    );
    assert!(!tool_ran(home.path()));
}

#[tokio::test]
async fn a_non_zero_exit_other_than_2_never_blocks_even_when_failing_closed() {
    let (home, client) = guard(json!([
        { "event": "beforeToolCall", "failOpen": false, "command": ["sh", "hooks/fail.sh"] },
        { "event": "afterToolCall", "failOpen": false, "command": ["sh", "hooks/fail.sh"] }
    ]))
    .await;
    let result = call(&client, "guard__run", json!({ "a": 1 })).await;
    assert_eq!(echoed(&result), json!({ "a": 1 }));
    assert!(tool_ran(home.path()));
}

#[tokio::test]
async fn a_hook_that_cannot_start_follows_the_failure_policy() {
    let (_home, client) = guard(json!([
        { "event": "beforeToolCall", "command": ["hooks/missing.sh"] }
    ]))
    .await;
    let result = call(&client, "guard__run", json!({ "a": 1 })).await;
    assert_eq!(echoed(&result), json!({ "a": 1 }));

    let (_closed, client) = guard(json!([
        { "event": "beforeToolCall", "failOpen": false, "command": ["hooks/missing.sh"] }
    ]))
    .await;
    let result = call(&client, "guard__run", json!({})).await;
    assert!(is_error(&result));
    assert!(
        text_of(&result).contains("command `hooks/missing.sh` was not found"),
        "{}",
        text_of(&result)
    );
}

// ---------------------------------------------------------------------------------------
// Permissions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_hook_whose_package_lacks_the_permission_is_refused_and_never_runs() {
    let home = tempfile::tempdir().expect("tempdir");
    let log = json!({ "event": "beforeToolCall", "command": ["sh", "hooks/log.sh", "refused"] });
    let silent = package(
        home.path(),
        "capmux-plugin-silent",
        json!({ "hooks": [log] }),
    );
    let ungranted = package(
        home.path(),
        "capmux-plugin-ungranted",
        json!({ "permissions": ["shell:execute"], "hooks": [log] }),
    );
    let url = package(
        home.path(),
        "capmux-plugin-url",
        json!({ "permissions": ["shell:execute"],
                "hooks": [{ "event": "beforeToolCall", "url": "http://127.0.0.1:9/hook" }] }),
    );
    let tool = tool_package(home.path(), "capmux-plugin-guard", json!([]));
    let roots = [silent, ungranted, url, tool];
    // Only the tool's package and the URL hook's package hold shell:execute.
    let config = grants(
        &["capmux-plugin-guard", "capmux-plugin-url"],
        &["shell:execute"],
    );

    let loaded = support::load(&roots, &config, home.path());
    assert!(loaded.pool.hooks.is_empty(), "{:?}", loaded.pool.hooks);
    let error = |package: &str| {
        loaded
            .diagnostics
            .iter()
            .find(|d| d.package.as_deref() == Some(package))
            .unwrap_or_else(|| panic!("no diagnostic for {package}: {:?}", loaded.diagnostics))
    };
    // Not declared: the package's error. Declared but not granted: a warning, the user's to
    // grant.
    for (package, severity, message) in [
        (
            "capmux-plugin-silent",
            Severity::Error,
            "beforeToolCall hook #0 is not run: the package does not declare `shell:execute`, which a command hook needs",
        ),
        (
            "capmux-plugin-ungranted",
            Severity::Warning,
            "beforeToolCall hook #0 is not run: the package has not been granted `shell:execute`, which a command hook needs",
        ),
        (
            "capmux-plugin-url",
            Severity::Error,
            "beforeToolCall hook #0 is not run: the package does not declare `network:fetch`, which a URL hook needs",
        ),
    ] {
        let d = error(package);
        assert_eq!(d.severity, severity, "{package}");
        assert_eq!(d.message, message);
    }

    let server = support::server(&roots, &config, home.path());
    let client = connect(server, "test").await;
    let result = call(&client, "guard__run", json!({ "a": 1 })).await;
    assert_eq!(echoed(&result), json!({ "a": 1 }));
    assert!(
        log_lines(home.path(), "ran.log").is_empty(),
        "a refused hook ran"
    );
}

// ---------------------------------------------------------------------------------------
// Prompts and resources
// ---------------------------------------------------------------------------------------

/// A package with the prompt `greet` (`Hello {{name}}!`) and `hooks`, and a client on it.
async fn prompt_package(hooks: Value) -> (TempDir, Client) {
    let home = tempfile::tempdir().expect("tempdir");
    let root = package(
        home.path(),
        "capmux-plugin-guard",
        json!({ "permissions": ["shell:execute"],
                "systemPrompts": [{ "content": "Guard rules." }],
                "prompts": [{ "name": "greet", "description": "greets", "content": "Hello {{name}}!",
                              "arguments": [{ "name": "name", "required": true }] }],
                "hooks": hooks }),
    );
    let server = server(home.path(), &[root], &["capmux-plugin-guard"]);
    (home, connect(server, "test").await)
}

fn emit(event: &str, matcher: &str, output: Value) -> Value {
    json!({ "event": event, "matcher": matcher,
            "command": ["python3", "hooks/emit.py", output.to_string()] })
}

fn greet(name: &str) -> GetPromptRequestParams {
    let mut arguments = Map::new();
    arguments.insert("name".into(), json!(name));
    GetPromptRequestParams::new("guard__greet").with_arguments(arguments)
}

#[tokio::test]
async fn before_prompt_get_can_block_with_an_error_naming_the_package() {
    let (home, client) = prompt_package(json!([emit(
        "beforePromptGet",
        "greet",
        json!({ "decision": "block", "reason": "prompts are off today" })
    )]))
    .await;
    let err = mcp_error(client.get_prompt(greet("Ada")).await.expect_err("blocked"));
    assert_eq!(err.code, ErrorCode::INVALID_REQUEST);
    assert_eq!(
        err.message,
        "blocked by a hook of package `capmux-plugin-guard`: prompts are off today"
    );
    let events = recorded_events(home.path());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["capmux_event"], "beforePromptGet");
    assert_eq!(events[0]["prompt_name"], "guard__greet");
    assert_eq!(events[0]["prompt_arguments"], json!({ "name": "Ada" }));

    // The system prompt is not `greet`: the matcher leaves it alone.
    client
        .get_prompt(GetPromptRequestParams::new("system"))
        .await
        .expect("another prompt is served");
}

#[tokio::test]
async fn before_prompt_get_can_rewrite_the_arguments() {
    let (_home, client) = prompt_package(json!([emit(
        "beforePromptGet",
        "guard__greet",
        json!({ "hookSpecificOutput": { "updatedInput": { "name": "Grace" } } })
    )]))
    .await;
    let result = client.get_prompt(greet("Ada")).await.expect("prompt");
    assert_eq!(result.messages.len(), 1);
    assert_eq!(message_text(&result, 0), "Hello Grace!");
}

#[tokio::test]
async fn after_prompt_get_context_is_an_extra_message() {
    let (home, client) = prompt_package(json!([emit(
        "afterPromptGet",
        "",
        json!({ "additionalContext": "Greet in French." })
    )]))
    .await;
    let result = client.get_prompt(greet("Ada")).await.expect("prompt");
    assert_eq!(result.messages.len(), 2);
    assert_eq!(message_text(&result, 0), "Hello Ada!");
    assert_eq!(message_text(&result, 1), "Greet in French.");
    let events = recorded_events(home.path());
    assert_eq!(
        events[0]["prompt_result"]["messages"][0]["content"]["text"],
        "Hello Ada!"
    );
}

#[tokio::test]
async fn before_resource_read_can_block() {
    let (_home, client) = prompt_package(json!([emit(
        "beforeResourceRead",
        "capmux://system-prompt",
        json!({ "decision": "deny", "reason": "read the prompt instead" })
    )]))
    .await;
    let err = mcp_error(
        client
            .read_resource(ReadResourceRequestParams::new("capmux://system-prompt"))
            .await
            .expect_err("blocked"),
    );
    assert_eq!(err.code, ErrorCode::INVALID_REQUEST);
    assert_eq!(
        err.message,
        "blocked by a hook of package `capmux-plugin-guard`: read the prompt instead"
    );
}

#[tokio::test]
async fn after_resource_read_can_replace_the_contents() {
    let (home, client) = prompt_package(json!([emit(
        "afterResourceRead",
        "",
        json!({ "updatedResult": "(withheld)" })
    )]))
    .await;
    let read = client
        .read_resource(ReadResourceRequestParams::new("capmux://system-prompt"))
        .await
        .expect("read");
    assert_eq!(read.contents.len(), 1);
    let ResourceContents::TextResourceContents { uri, text, .. } = &read.contents[0] else {
        panic!("expected text, got {:?}", read.contents[0]);
    };
    assert_eq!(text, "(withheld)");
    assert_eq!(uri, "capmux://system-prompt");
    let events = recorded_events(home.path());
    assert!(
        events[0]["resource_result"]["contents"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Guard rules.")),
        "{}",
        events[0]
    );
}

// ---------------------------------------------------------------------------------------
// sessionStart
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn session_start_text_joins_that_sessions_instructions() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = package(
        home.path(),
        "capmux-plugin-guard",
        json!({ "permissions": ["shell:execute"],
                "displayName": "Guard",
                "systemPrompts": [{ "content": "Guard rules." }],
                "hooks": [
                    { "event": "sessionStart", "command": ["sh", "hooks/session_text.sh"] },
                    emit("sessionStart", "startup",
                         json!({ "additionalContext": "Use the ticket prefix LOGIN." })),
                ] }),
    );
    let server = server(home.path(), &[root], &["capmux-plugin-guard"]);
    let claude = connect(server.clone(), "claude-code").await;
    let instructions = claude
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .expect("instructions");
    assert_eq!(
        instructions,
        "# Guard\n\nGuard rules.\n\nRemember: the staging database is read-only.\n\nUse the ticket prefix LOGIN."
    );
    let other = connect(server, "some-client").await;
    assert!(other.peer_info().is_some());
    let events = recorded_events(home.path());
    assert_eq!(events.len(), 2, "one run per session");
    assert_eq!(events[0]["hook_event_name"], "SessionStart");
    assert_eq!(events[0]["source"], "startup");
    assert_eq!(events[0]["client_name"], "claude-code");
    assert_eq!(events[0]["provider"], "claude");
    assert_eq!(events[1]["client_name"], "some-client");
}

// ---------------------------------------------------------------------------------------
// The host API: compose and after-response
// ---------------------------------------------------------------------------------------

/// The rules and the prompt `capmux-plugin-house` (the fixture package) contributes.
const RULES: &str = "Be kind.";
const HOUSE: &str = "Answer in English and keep answers short.";
const CLAUDE_ONLY: &str = "Claude only: use the TodoWrite tool for plans of more than three steps.";

/// A config file for the `house` fixture with its hooks in `message_mode` and
/// `response_mode`.
fn house_config(home: &Path, message_mode: &str, response_mode: &str) -> PathBuf {
    let config = home.join("capmux.toml");
    std::fs::write(
        &config,
        format!(
            "rules = [\"{RULES}\"]\n[packages.\"capmux-plugin-house\"]\ngrants = [\"shell:execute\"]\nsettings = {{ message_mode = \"{message_mode}\", response_mode = \"{response_mode}\" }}\n"
        ),
    )
    .expect("write config");
    config
}

/// `capmux --no-bundled --package <house> --config <config> ARGS` in `home`, with `stdin`.
fn house(home: &Path, config: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut command = capmux(home);
    command
        .current_dir(home)
        .arg("--no-bundled")
        .arg("--package")
        .arg(fixture("packages/house"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("capmux runs");
    {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
    }
    let output = child.wait_with_output().expect("capmux ends");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn layout(parts: &[&str], message: &str) -> String {
    let mut blocks = vec!["[Assistant Rules - You MUST follow these instructions]"];
    blocks.extend(parts);
    blocks.extend(["[User Request]", message]);
    blocks.join("\n\n")
}

/// The events the house package's beforeMessage hook recorded.
fn message_events(home: &Path) -> Vec<Value> {
    log_lines(home, "message-events.jsonl")
        .iter()
        .map(|l| serde_json::from_str(l).expect("an event"))
        .collect()
}

#[test]
fn compose_prints_the_rfc_layout_keeping_provider_prompts_only_for_that_provider() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = house_config(home.path(), "off", "off");
    let message = "Fix the login bug";
    let (code, stdout, stderr) = house(
        home.path(),
        &config,
        &["compose", message, "--provider", "claude"],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        format!("{}\n", layout(&[RULES, HOUSE, CLAUDE_ONLY], message))
    );

    let (code, stdout, stderr) = house(home.path(), &config, &["compose", message], None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, format!("{}\n", layout(&[RULES, HOUSE], message)));

    let events = message_events(home.path());
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["hook_event_name"], "UserPromptSubmit");
    assert_eq!(events[0]["prompt"], message);
    assert_eq!(events[0]["provider"], "claude");
    assert_eq!(events[1]["provider"], Value::Null);
}

#[test]
fn a_before_message_hook_rewrites_the_message_the_rfc_way_and_the_claude_way() {
    let home = tempfile::tempdir().expect("tempdir");
    let message = "Fix the login bug";
    let config = house_config(home.path(), "rfc", "off");
    let (code, stdout, stderr) = house(home.path(), &config, &["compose", message], None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "{}\n",
            layout(&[RULES, HOUSE], "Fix the login bug (ticket LOGIN-7)")
        )
    );

    let config = house_config(home.path(), "claude", "off");
    let (code, stdout, stderr) = house(home.path(), &config, &["compose", message], None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        format!("{}\n", layout(&[RULES, HOUSE], "FIX THE LOGIN BUG"))
    );
}

#[test]
fn plain_text_from_a_before_message_hook_is_context_before_the_request() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = house_config(home.path(), "context", "off");
    let (code, stdout, stderr) = house(home.path(), &config, &["compose", "Fix it"], None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "{}\n",
            layout(
                &[RULES, HOUSE, "The login service lives in services/auth."],
                "Fix it"
            )
        )
    );
}

#[test]
fn a_cancelling_hook_makes_compose_exit_1_naming_the_package() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = house_config(home.path(), "cancel", "off");
    let (code, stdout, stderr) = house(home.path(), &config, &["compose", "Call ACME"], None);
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(
            "capmux: blocked by a hook of package `capmux-plugin-house`: the message names a customer"
        ),
        "{stderr}"
    );

    let (code, stdout, _) = house(
        home.path(),
        &config,
        &["compose", "Call ACME", "--json"],
        None,
    );
    assert_eq!(code, 1);
    let composed: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(composed["text"], "");
    assert_eq!(
        composed["cancelled"],
        json!({ "package": "capmux-plugin-house", "reason": "the message names a customer" })
    );
}

#[test]
fn compose_json_gives_the_message_parts_and_provider_and_passes_the_conversation() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = house_config(home.path(), "rfc", "off");
    let (code, stdout, stderr) = house(
        home.path(),
        &config,
        &[
            "compose",
            "Fix the login bug",
            "--provider",
            "claude",
            "--conversation",
            "conv-42",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    let composed: Value = serde_json::from_str(&stdout).expect("json");
    let message = "Fix the login bug (ticket LOGIN-7)";
    assert_eq!(composed["message"], message);
    assert_eq!(
        composed["text"],
        layout(&[RULES, HOUSE, CLAUDE_ONLY], message)
    );
    assert_eq!(composed["cancelled"], Value::Null);
    assert_eq!(composed["provider"], "claude");
    assert_eq!(composed["context"], json!([]));
    let origins: Vec<&str> = composed["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .map(|p| p["origin"].as_str().expect("origin"))
        .collect();
    assert_eq!(
        origins,
        [
            "config: rules",
            "capmux-plugin-house: capmux.systemPrompts[0]",
            "capmux-plugin-house: prompts/claude.md"
        ]
    );
    assert_eq!(message_events(home.path())[0]["session_id"], "conv-42");
}

#[test]
fn compose_reads_the_message_from_stdin() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = house_config(home.path(), "rfc", "off");
    let (code, stdout, stderr) = house(
        home.path(),
        &config,
        &["compose"],
        Some("Fix the login bug\n"),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "{}\n",
            layout(&[RULES, HOUSE], "Fix the login bug (ticket LOGIN-7)")
        )
    );
}

#[test]
fn after_response_hooks_replace_or_block_the_reply() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = house_config(home.path(), "off", "redact");
    let reply = "Fixed in 3 files, see PR 1234.";
    let (code, stdout, stderr) = house(home.path(), &config, &["after-response", reply], None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "Fixed in # files, see PR ####.\n");

    let (code, stdout, stderr) = house(
        home.path(),
        &config,
        &["after-response", "--json"],
        Some(&format!("{reply}\n")),
    );
    assert_eq!(code, 0, "{stderr}");
    let responded: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        responded,
        json!({ "response": "Fixed in # files, see PR ####.", "blocked": null, "context": [] })
    );

    let config = house_config(home.path(), "off", "block");
    let (code, stdout, stderr) = house(home.path(), &config, &["after-response", reply], None);
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(
            "capmux: blocked by a hook of package `capmux-plugin-house`: the reply is not finished"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_compose_prompt_composes_through_mcp() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "rules = [\"{RULES}\"]\n[packages.\"capmux-plugin-house\"]\ngrants = [\"shell:execute\"]\nsettings = {{ message_mode = \"rfc\" }}\n"
    );
    let server = support::server(&[fixture("packages/house")], &config, home.path());
    let client = connect(server, "some-client").await;
    let compose = |provider: Option<&str>| {
        let mut arguments = Map::new();
        arguments.insert("message".into(), json!("Fix the login bug"));
        if let Some(provider) = provider {
            arguments.insert("provider".into(), json!(provider));
        }
        GetPromptRequestParams::new("compose").with_arguments(arguments)
    };
    let message = "Fix the login bug (ticket LOGIN-7)";
    let result = client
        .get_prompt(compose(Some("claude")))
        .await
        .expect("compose");
    assert_eq!(result.messages.len(), 1);
    assert_eq!(
        message_text(&result, 0),
        layout(&[RULES, HOUSE, CLAUDE_ONLY], message)
    );
    let result = client.get_prompt(compose(None)).await.expect("compose");
    assert_eq!(message_text(&result, 0), layout(&[RULES, HOUSE], message));
    // Without a `provider` argument, the client's own provider counts.
    let claude = connect(
        support::server(&[fixture("packages/house")], &config, home.path()),
        "claude-code",
    )
    .await;
    let result = claude.get_prompt(compose(None)).await.expect("compose");
    assert_eq!(
        message_text(&result, 0),
        layout(&[RULES, HOUSE, CLAUDE_ONLY], message)
    );

    let config = config.replace("\"rfc\"", "\"cancel\"");
    let server = support::server(&[fixture("packages/house")], &config, home.path());
    let client = connect(server, "some-client").await;
    let err = mcp_error(
        client
            .get_prompt(compose(None))
            .await
            .expect_err("cancelled"),
    );
    assert_eq!(err.code, ErrorCode::INVALID_REQUEST);
    assert_eq!(
        err.message,
        "blocked by a hook of package `capmux-plugin-house`: the message names a customer"
    );
}

// ---------------------------------------------------------------------------------------
// In-process hooks
// ---------------------------------------------------------------------------------------

/// Blocks every call whose arguments hold `"danger": true`.
struct DenyDanger;

impl HookHandler for DenyDanger {
    fn handle<'a>(&'a self, input: &'a Value) -> BoxFuture<'a, Result<Decision, HookError>> {
        Box::pin(async move {
            let danger = input["tool_input"]["danger"] == json!(true);
            Ok(Decision {
                block: danger.then(|| format!("{} was asked for danger", input["tool_name"])),
                ..Decision::default()
            })
        })
    }
}

/// Adds `"by": "rust"` to the arguments and keeps what it saw.
#[derive(Default)]
struct Stamp {
    seen: Mutex<Vec<Value>>,
}

impl HookHandler for Stamp {
    fn handle<'a>(&'a self, input: &'a Value) -> BoxFuture<'a, Result<Decision, HookError>> {
        Box::pin(async move {
            self.seen.lock().expect("lock").push(input.clone());
            let mut merge = Map::new();
            merge.insert("by".into(), json!("rust"));
            Ok(Decision {
                merge_input: Some(merge),
                ..Decision::default()
            })
        })
    }
}

fn in_process(package: &str, matcher: &str, handler: Arc<dyn HookHandler>) -> Hook {
    Hook {
        package: package.into(),
        event: HookEvent::BeforeToolCall,
        matcher: Matcher::parse(Some(matcher)).expect("matcher"),
        handler,
        timeout: Duration::from_secs(5),
        fail_open: true,
    }
}

#[tokio::test]
async fn an_in_process_hook_can_block_a_call() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = tool_package(home.path(), "capmux-plugin-guard", json!([]));
    let server = server(home.path(), &[root], &["capmux-plugin-guard"]).with_hook(in_process(
        "policy",
        "guard__run",
        Arc::new(DenyDanger),
    ));
    let client = connect(server, "test").await;
    let result = call(&client, "guard__run", json!({ "danger": true })).await;
    assert!(is_error(&result));
    assert_eq!(
        text_of(&result),
        "blocked by a hook of package `policy`: \"guard__run\" was asked for danger"
    );
    assert!(!tool_ran(home.path()));
    let result = call(&client, "guard__run", json!({ "danger": false })).await;
    assert_eq!(echoed(&result), json!({ "danger": false }));
}

#[tokio::test]
async fn a_hook_added_to_a_served_server_reaches_every_clone() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = tool_package(home.path(), "capmux-plugin-guard", json!([]));
    let server = server(home.path(), &[root], &["capmux-plugin-guard"]);
    let clone = server.clone();
    let client = connect(clone, "test").await;
    server.add_hook(in_process("policy", "guard__run", Arc::new(DenyDanger)));
    let result = call(&client, "guard__run", json!({ "danger": true })).await;
    assert!(is_error(&result), "{}", text_of(&result));
    assert!(!tool_ran(home.path()));
}

#[tokio::test]
async fn an_in_process_hook_rewrites_arguments_after_the_package_hooks() {
    let home = tempfile::tempdir().expect("tempdir");
    let root = tool_package(
        home.path(),
        "capmux-plugin-guard",
        json!([{ "event": "beforeToolCall", "command": ["python3", "hooks/chain.py", "P1"] }]),
    );
    let stamp = Arc::new(Stamp::default());
    let server = server(home.path(), &[root], &["capmux-plugin-guard"]).with_hook(in_process(
        "stamp",
        "*",
        stamp.clone(),
    ));
    let client = connect(server, "test").await;
    let result = call(&client, "guard__run", json!({ "x": 1 })).await;
    assert_eq!(
        echoed(&result),
        json!({ "x": 1, "trail": ["P1"], "by": "rust" })
    );
    let seen = stamp.seen.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["hook_event_name"], "PreToolUse");
    assert_eq!(seen[0]["tool_name"], "guard__run");
    assert_eq!(
        seen[0]["tool_input"],
        json!({ "x": 1, "trail": ["P1"] }),
        "the in-process hook sees the package hook's output"
    );
}

// ---------------------------------------------------------------------------------------
// HTTP hooks
// ---------------------------------------------------------------------------------------

/// A one-route HTTP/1.1 server on 127.0.0.1 answering every POST with `status` and `body`;
/// returns its URL and the bodies it received.
async fn http_endpoint(
    status: &'static str,
    body: &'static str,
) -> (String, Arc<Mutex<Vec<Value>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let received = Arc::new(Mutex::new(Vec::new()));
    let bodies = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                let (head_end, length) = loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while request.len() < head_end + length {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                if let Ok(body) = serde_json::from_slice(&request[head_end..head_end + length]) {
                    bodies.lock().expect("lock").push(body);
                }
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, received)
}

/// A package with the tool and one URL hook, holding `shell:execute` and `network:fetch`.
async fn http_guard(url: &str, fail_open: bool) -> (TempDir, Client) {
    let home = tempfile::tempdir().expect("tempdir");
    let root = package(
        home.path(),
        "capmux-plugin-guard",
        json!({ "permissions": ["shell:execute", "network:fetch"], "tools": [run_tool()],
                "hooks": [{ "event": "beforeToolCall", "url": url, "failOpen": fail_open }] }),
    );
    let config = grants(
        &["capmux-plugin-guard"],
        &["shell:execute", "network:fetch"],
    );
    let server = support::server(&[root], &config, home.path());
    (home, connect(server, "test").await)
}

#[tokio::test]
async fn an_http_hook_answering_2xx_json_decides() {
    let (url, received) = http_endpoint(
        "200 OK",
        r#"{"decision": "block", "reason": "the gateway says no"}"#,
    )
    .await;
    let (home, client) = http_guard(&url, true).await;
    let result = call(&client, "guard__run", json!({ "a": 1 })).await;
    assert!(is_error(&result));
    assert_eq!(
        text_of(&result),
        "blocked by a hook of package `capmux-plugin-guard`: the gateway says no"
    );
    assert!(!tool_ran(home.path()));
    let received = received.lock().expect("lock");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["hook_event_name"], "PreToolUse");
    assert_eq!(received[0]["tool_name"], "guard__run");
    assert_eq!(received[0]["tool_input"], json!({ "a": 1 }));
}

#[tokio::test]
async fn an_http_hook_answering_non_2xx_never_blocks() {
    let (url, received) = http_endpoint(
        "503 Service Unavailable",
        r#"{"decision": "block", "reason": "down for maintenance"}"#,
    )
    .await;
    let (home, client) = http_guard(&url, false).await;
    let result = call(&client, "guard__run", json!({ "a": 1 })).await;
    assert_eq!(echoed(&result), json!({ "a": 1 }));
    assert!(tool_ran(home.path()));
    assert_eq!(
        received.lock().expect("lock").len(),
        1,
        "the hook was asked"
    );
}
