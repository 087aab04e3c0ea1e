//! Command tools through the real server: results, failures, timeouts that leave no
//! process behind, arguments refused before anything starts, bounded output, grants,
//! settings and the allow-listed environment.

use std::path::Path;
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

use crate::support::{self, Client, call, connect, gone, is_error, read_pid, text_of};

/// A package `capmux-plugin-t` with one tool `run` running `sh run.sh`, and a client on it.
async fn sh_tool(home: &Path, script: &str, extra: Value, config: &str) -> Client {
    let mut tool = json!({ "name": "run", "description": "test", "command": ["sh", "run.sh"] });
    if let (Value::Object(tool), Value::Object(extra)) = (&mut tool, extra) {
        tool.extend(extra);
    }
    let root = support::package(
        home,
        "capmux-plugin-t",
        json!({ "manifestVersion": 1, "permissions": ["shell:execute"], "tools": [tool],
                "settings": { "token": { "type": "string", "secret": true } } }),
        &[("run.sh", script)],
    );
    let grant = "[packages.\"capmux-plugin-t\"]\ngrants = [\"shell:execute\"]\n";
    let server = support::server(&[root], &format!("{config}{grant}"), home);
    connect(server, "test").await
}

#[tokio::test]
async fn plain_stdout_is_text_content() {
    let home = tempfile::tempdir().expect("tempdir");
    let schema = json!({ "inputSchema": { "type": "object" } });
    let client = sh_tool(home.path(), "cat; echo; echo done", schema, "").await;
    let result = call(&client, "t__run", json!({ "a": 1 })).await;
    assert!(!is_error(&result));
    assert_eq!(text_of(&result), "{\"a\":1}\ndone\n");
}

#[tokio::test]
async fn success_false_is_a_tool_error_with_its_reason() {
    let home = tempfile::tempdir().expect("tempdir");
    let script = r#"echo '{"success": false, "error": "the issue tracker is read-only"}'"#;
    let client = sh_tool(home.path(), script, json!({}), "").await;
    let result = call(&client, "t__run", json!({})).await;
    assert!(is_error(&result));
    assert_eq!(text_of(&result), "the issue tracker is read-only");
}

#[tokio::test]
async fn a_failing_process_is_a_tool_error_with_its_status_and_stderr() {
    let home = tempfile::tempdir().expect("tempdir");
    let client = sh_tool(
        home.path(),
        "echo 'disk on fire' >&2; exit 3",
        json!({}),
        "",
    )
    .await;
    let result = call(&client, "t__run", json!({})).await;
    assert!(is_error(&result));
    assert_eq!(
        text_of(&result),
        "tool `t__run` failed (exit status 3): disk on fire"
    );
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let home = tempfile::tempdir().expect("tempdir");
    let script = "sleep 300 &\necho $! > \"$CAPMUX_WORKSPACE/grandchild.pid\"\necho $$ > \"$CAPMUX_WORKSPACE/child.pid\"\nsleep 300\n";
    let client = sh_tool(home.path(), script, json!({ "timeoutMs": 400 }), "").await;
    let started = Instant::now();
    let result = call(&client, "t__run", json!({})).await;
    assert!(is_error(&result));
    assert_eq!(
        text_of(&result),
        "tool `t__run` timed out after 400 ms and was stopped"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let child = read_pid(home.path().join("child.pid"));
    let grandchild = read_pid(home.path().join("grandchild.pid"));
    assert!(gone(child), "the tool process {child} survived");
    assert!(
        gone(grandchild),
        "its background child {grandchild} survived"
    );
}

#[tokio::test]
async fn what_a_tool_leaves_running_is_killed_when_it_exits() {
    let home = tempfile::tempdir().expect("tempdir");
    let script = "sleep 300 &\necho $! > \"$CAPMUX_WORKSPACE/leftover.pid\"\necho finished\n";
    let client = sh_tool(home.path(), script, json!({}), "").await;
    let result = call(&client, "t__run", json!({})).await;
    assert_eq!(text_of(&result), "finished\n");
    let leftover = read_pid(home.path().join("leftover.pid"));
    assert!(
        gone(leftover),
        "the background process {leftover} survived the call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_kills_the_tool() {
    let home = tempfile::tempdir().expect("tempdir");
    let script = "echo $$ > \"$CAPMUX_WORKSPACE/child.pid\"\nsleep 300\n";
    let client = sh_tool(home.path(), script, json!({}), "").await;
    let peer = client.peer().clone();
    let task = tokio::spawn(async move {
        let _ = peer.call_tool(CallToolRequestParams::new("t__run")).await;
    });
    let child = read_pid(home.path().join("child.pid"));
    task.abort();
    assert!(gone(child), "the tool survived its cancelled call");
}

#[tokio::test]
async fn arguments_are_checked_before_anything_starts() {
    let home = tempfile::tempdir().expect("tempdir");
    let schema = json!({ "type": "object", "properties": { "n": { "type": "integer" } },
                         "required": ["n"], "additionalProperties": false });
    let script = "touch \"$CAPMUX_WORKSPACE/ran\"\necho ok\n";
    let client = sh_tool(home.path(), script, json!({ "inputSchema": schema }), "").await;
    let marker = home.path().join("ran");

    let result = call(&client, "t__run", json!({ "n": "seven", "extra": true })).await;
    assert!(is_error(&result));
    let text = text_of(&result);
    assert!(
        text.starts_with("invalid arguments for tool `t__run`:"),
        "{text}"
    );
    assert!(
        text.contains("argument `n`") && text.contains("extra"),
        "{text}"
    );
    assert!(!marker.exists(), "the tool ran with invalid arguments");

    let result = call(&client, "t__run", json!({})).await;
    assert!(text_of(&result).contains("\"n\" is a required property"));
    assert!(!marker.exists());

    let result = call(&client, "t__run", json!({ "n": 7 })).await;
    assert!(!is_error(&result));
    assert!(marker.exists());
}

#[tokio::test]
async fn huge_output_is_cut_with_a_note() {
    let home = tempfile::tempdir().expect("tempdir");
    let script = "head -c 5000000 /dev/zero | tr '\\0' x\n";
    let client = sh_tool(
        home.path(),
        script,
        json!({}),
        "tool_output_limit = 65536\n",
    )
    .await;
    let result = call(&client, "t__run", json!({})).await;
    assert!(!is_error(&result));
    let text = text_of(&result);
    assert!(text.starts_with(&"x".repeat(65536)));
    assert!(
        text.ends_with("\n[output truncated: 5000000 bytes, showing the first 65536]"),
        "{}",
        &text[65536..]
    );
}

#[tokio::test]
async fn a_tool_runs_only_when_its_package_holds_shell_execute() {
    let home = tempfile::tempdir().expect("tempdir");
    let tool = json!({ "name": "run", "description": "x", "command": ["sh", "run.sh"] });
    let declares = support::package(
        home.path(),
        "capmux-plugin-declares",
        json!({ "manifestVersion": 1, "permissions": ["shell:execute"], "tools": [tool] }),
        &[("run.sh", "echo ran")],
    );
    let silent = support::package(
        home.path(),
        "capmux-plugin-silent",
        json!({ "manifestVersion": 1, "tools": [tool] }),
        &[("run.sh", "echo ran")],
    );
    let roots = [declares, silent];
    let client = connect(support::server(&roots, "", home.path()), "test").await;
    let result = call(&client, "declares__run", json!({})).await;
    assert!(is_error(&result));
    assert!(text_of(&result).contains(
        "package `capmux-plugin-declares` has not been granted `shell:execute`; grant it by adding grants = [\"shell:execute\"] under [packages.\"capmux-plugin-declares\"]"
    ));
    let result = call(&client, "silent__run", json!({})).await;
    assert!(text_of(&result).contains("does not declare the `shell:execute` permission"));

    let config = "[packages.\"capmux-plugin-declares\"]\ngrants = [\"shell:execute\"]\n[packages.\"capmux-plugin-silent\"]\ngrants = [\"shell:execute\"]\n";
    let client = connect(support::server(&roots, config, home.path()), "test").await;
    assert_eq!(
        text_of(&call(&client, "declares__run", json!({})).await),
        "ran\n"
    );
    assert!(
        is_error(&call(&client, "silent__run", json!({})).await),
        "a grant is not a declaration"
    );
}

#[tokio::test]
async fn required_settings_must_be_set_and_reach_the_tool() {
    let home = tempfile::tempdir().expect("tempdir");
    let tool = json!({ "name": "show", "description": "x",
                       "command": ["sh", "show.sh", "${settings.region}"] });
    let root = support::package(
        home.path(),
        "capmux-plugin-s",
        json!({ "manifestVersion": 1, "permissions": ["shell:execute"], "tools": [tool],
                "settings": { "api_key": { "type": "string", "secret": true, "required": true },
                              "region": { "type": "string", "default": "eu" } } }),
        &[(
            "show.sh",
            "echo \"$1 $CAPMUX_SETTING_API_KEY $CAPMUX_SETTINGS\"",
        )],
    );
    let grant = "[packages.\"capmux-plugin-s\"]\ngrants = [\"shell:execute\"]\n";
    let client = connect(
        support::server(std::slice::from_ref(&root), grant, home.path()),
        "test",
    )
    .await;
    let result = call(&client, "s__show", json!({})).await;
    assert!(is_error(&result));
    assert!(text_of(&result).starts_with(
        "package `capmux-plugin-s` needs the setting `api_key` first: add it under [packages.\"capmux-plugin-s\".settings]"
    ));

    let config = format!("{grant}settings = {{ api_key = \"k-123\" }}\n");
    let client = connect(support::server(&[root], &config, home.path()), "test").await;
    let text = text_of(&call(&client, "s__show", json!({})).await);
    assert_eq!(text, "eu k-123 {\"api_key\":\"k-123\",\"region\":\"eu\"}\n");
}

#[tokio::test]
async fn the_environment_is_an_allow_list() {
    let allowed = ["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];
    let is_allowed = |key: &str| allowed.contains(&key) || key.starts_with("CAPMUX_");
    assert!(
        std::env::vars().any(|(key, _)| !is_allowed(&key)),
        "the test needs a host variable that must not reach the tool"
    );
    let home = tempfile::tempdir().expect("tempdir");
    let client = sh_tool(home.path(), "env | cut -d= -f1 | sort", json!({}), "").await;
    let text = text_of(&call(&client, "t__run", json!({})).await);
    let keys: Vec<&str> = text
        .lines()
        .filter(|k| !k.is_empty() && *k != "PWD" && *k != "SHLVL" && *k != "_")
        .collect();
    for key in &keys {
        assert!(is_allowed(key), "`{key}` reached the tool");
    }
    for key in [
        "CAPMUX_PLUGIN_ROOT",
        "CAPMUX_PLUGIN_DATA",
        "CAPMUX_WORKSPACE",
        "CAPMUX_PACKAGE",
        "CAPMUX_TOOL",
        "CAPMUX_SETTINGS",
    ] {
        assert!(keys.contains(&key), "{key} is missing: {keys:?}");
    }
}

#[tokio::test]
async fn tool_results_map_display_types_and_data() {
    let home = tempfile::tempdir().expect("tempdir");
    let script = r#"echo '{"success": true, "data": {"n": 2}, "display": {"type": "image", "content": "data:image/png;base64,iVBORw0KGgo="}}'"#;
    let client = sh_tool(home.path(), script, json!({}), "").await;
    let result = call(&client, "t__run", json!({})).await;
    let image = result.content[0].as_image().expect("image content");
    assert_eq!(image.mime_type, "image/png");
    assert_eq!(image.data, "iVBORw0KGgo=");
    assert_eq!(result.structured_content, Some(json!({ "n": 2 })));

    let script = r#"echo '{"success": true, "data": [1, 2]}'"#;
    let home = tempfile::tempdir().expect("tempdir");
    let client = sh_tool(home.path(), script, json!({}), "").await;
    let result = call(&client, "t__run", json!({})).await;
    assert_eq!(text_of(&result), "[1,2]");
    assert_eq!(
        result.structured_content, None,
        "structured content is an object or nothing"
    );
}
