//! Child MCP servers through capmux: the example server (`examples/mcp_child.rs`) as a real
//! child process, capmux's server in process, and rmcp's client on the other side.

#![allow(
    deprecated,
    reason = "logging, sampling and roots are SEP-2577-deprecated in rmcp"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, GetPromptRequestParams, LoggingLevel,
    ReadResourceRequestParams, SetLevelRequestParams,
};
use rmcp::service::{PeerRequestOptions, RunningService};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::child_example::{Seen, TestClient, binary, wait_for, within};
use crate::support::{self, is_error, text_of};
use capmux::Server;
use capmux::child::State;

type Client = RunningService<RoleClient, TestClient>;

/// A servers config file in `dir` with `servers` (name → entry); `mcp_child` is the
/// command of entries without one.
fn servers_file(dir: &Path, servers: Value) -> PathBuf {
    let mut servers = servers;
    for entry in servers.as_object_mut().expect("object").values_mut() {
        if entry.get("command").is_none() && entry.get("url").is_none() {
            entry["command"] = binary().display().to_string().into();
        }
    }
    let path = dir.join("servers.json");
    std::fs::write(&path, json!({ "mcpServers": servers }).to_string()).expect("write");
    path
}

fn server_over(dir: &Path, servers: Value, config: &str) -> Server {
    let file = servers_file(dir, servers);
    support::server(&[file], config, dir)
}

async fn connect(server: Server, capable: bool) -> (Client, Arc<Seen>) {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let seen = Arc::new(Seen::default());
    let client = TestClient {
        capable,
        seen: seen.clone(),
    };
    let client = within("initialize", client.serve(client_io))
        .await
        .expect("client initializes");
    (client, seen)
}

fn state_of(server: &Server, label: &str) -> State {
    server
        .children()
        .status()
        .into_iter()
        .find(|s| s.server == label)
        .map(|s| s.state)
        .expect("server listed")
}

/// Starts a call of the sleep tool `name` (with a progress token) and returns its handle.
async fn start_sleep(
    client: &Client,
    name: &str,
    ms: u64,
    steps: u64,
) -> rmcp::service::RequestHandle<RoleClient> {
    let params = CallToolRequestParams::new(name.to_owned()).with_arguments(
        json!({ "ms": ms, "steps": steps })
            .as_object()
            .cloned()
            .expect("obj"),
    );
    client
        .send_request_with_option(
            ClientRequest::CallToolRequest(CallToolRequest::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("send")
}

async fn tool_names(client: &Client) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

#[tokio::test]
async fn a_child_is_served_under_its_name_with_everything_it_has() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server_over(dir.path(), json!({ "kid": {} }), "");
    let (client, _) = connect(server, false).await;

    let info = client.peer_info().expect("server info");
    let instructions = info.instructions.clone().unwrap_or_default();
    assert!(
        instructions.contains("An example MCP server for capmux tests."),
        "{instructions}"
    );
    let tools = tool_names(&client).await;
    for tool in ["kid__echo", "kid__add", "kid__sleep", "kid__sample"] {
        assert!(tools.iter().any(|t| t == tool), "{tool} in {tools:?}");
    }
    let echo = support::call(&client, "kid__echo", json!({ "text": "hello" })).await;
    assert_eq!(text_of(&echo), "hello");
    assert_eq!(echo.structured_content, Some(json!({ "text": "hello" })));
    let fail = support::call(&client, "kid__fail", json!({ "message": "it broke" })).await;
    assert!(is_error(&fail));
    assert_eq!(text_of(&fail), "it broke");

    let prompt = client
        .get_prompt(
            GetPromptRequestParams::new("kid__greet")
                .with_arguments(json!({ "name": "Ada" }).as_object().cloned().expect("obj")),
        )
        .await
        .expect("prompts/get");
    assert!(format!("{:?}", prompt.messages).contains("Ada"));

    let resources = client.list_all_resources().await.expect("resources/list");
    assert!(resources.iter().any(|r| r.uri == "child://readme"));
    let read = client
        .read_resource(ReadResourceRequestParams::new("child://readme"))
        .await
        .expect("resources/read");
    assert!(format!("{:?}", read.contents).contains("an example MCP server"));

    let templates = client
        .list_all_resource_templates()
        .await
        .expect("resources/templates/list");
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].uri_template, "child://notes/{name}");
    let note = client
        .read_resource(ReadResourceRequestParams::new("child://notes/todo"))
        .await
        .expect("a read through the template");
    assert!(format!("{:?}", note.contents).contains("note todo"));
    let unknown = client
        .read_resource(ReadResourceRequestParams::new("other://x"))
        .await;
    assert!(unknown.is_err());

    let system = client
        .get_prompt(GetPromptRequestParams::new("system"))
        .await
        .expect("system prompt");
    assert!(format!("{:?}", system.messages).contains("Server kid"));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn progress_reaches_the_client_in_order_and_before_the_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server_over(dir.path(), json!({ "kid": {} }), "");
    let (client, seen) = connect(server, false).await;
    for round in 0..5 {
        seen.progress.lock().expect("lock").clear();
        let handle = start_sleep(&client, "kid__sleep", 20, 20).await;
        let result = within("sleep", handle.await_response())
            .await
            .expect("answer");
        // The client's own handler runs in a task per notification; give it a moment.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let steps: Vec<f64> = seen.progress().iter().map(|p| p.progress).collect();
        assert_eq!(
            steps,
            (1..=20).map(f64::from).collect::<Vec<_>>(),
            "round {round}: {result:?}"
        );
    }
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn logging_sampling_elicitation_and_roots_go_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server_over(dir.path(), json!({ "kid": {} }), "");
    let (client, seen) = connect(server, true).await;

    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
        .await
        .expect("setLevel");
    support::call(
        &client,
        "kid__log",
        json!({ "level": "info", "message": "quiet" }),
    )
    .await;
    support::call(
        &client,
        "kid__log",
        json!({ "level": "error", "message": "loud" }),
    )
    .await;
    wait_for("the log message", || !seen.logs().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = seen.logs();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].level, LoggingLevel::Error);
    assert!(logs[0].logger.as_deref().unwrap_or("").starts_with("kid"));

    let sampled = support::call(&client, "kid__sample", json!({ "prompt": "6 x 7?" })).await;
    assert!(
        text_of(&sampled).contains("canned answer to: 6 x 7?"),
        "{sampled:?}"
    );
    assert_eq!(seen.sampled.lock().expect("lock").len(), 1);

    let elicited = support::call(&client, "kid__elicit", json!({ "message": "Answer?" })).await;
    assert!(text_of(&elicited).contains("forty-two"), "{elicited:?}");

    let roots = support::call(&client, "kid__roots", json!({})).await;
    assert!(
        text_of(&roots).contains("file:///work/project"),
        "{roots:?}"
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_client_without_sampling_is_not_asked_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server_over(dir.path(), json!({ "kid": {} }), "");
    let (client, seen) = connect(server, false).await;
    let sampled = support::call(&client, "kid__sample", json!({ "prompt": "hi" })).await;
    assert!(
        is_error(&sampled) || text_of(&sampled).contains("sampling"),
        "{sampled:?}"
    );
    assert!(seen.sampled.lock().expect("lock").is_empty());
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn the_clients_cancel_and_a_timeout_reach_the_child() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server_over(
        dir.path(),
        json!({ "kid": {}, "slow": { "args": ["--name", "slow"], "timeout": 300 } }),
        "",
    );
    let (client, seen) = connect(server, false).await;

    // Cancelled by the client.
    let handle = start_sleep(&client, "kid__sleep", 5000, 50).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.cancel(Some("test".into())).await.expect("cancel");
    wait_for("the child's cancel log", || {
        seen.logs()
            .iter()
            .any(|l| l.data.to_string().contains("sleep cancelled"))
    })
    .await;

    // Timed out by capmux: an error, and the child is told.
    seen.logs.lock().expect("lock").clear();
    let started = Instant::now();
    let result = support::call(&client, "slow__sleep", json!({ "ms": 5000, "steps": 1 })).await;
    assert!(is_error(&result));
    assert!(
        text_of(&result).contains("did not answer within"),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    wait_for("the timed-out child's cancel log", || {
        seen.logs()
            .iter()
            .any(|l| l.data.to_string().contains("sleep cancelled"))
    })
    .await;
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_childs_list_changed_reaches_the_client_with_the_new_tool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server_over(dir.path(), json!({ "kid": {} }), "");
    let (client, seen) = connect(server, false).await;
    support::call(&client, "kid__add_tool", json!({ "name": "dyn_echo" })).await;
    wait_for("tools/list_changed", || {
        seen.tool_list_changed.load(Ordering::SeqCst) > 0
    })
    .await;
    assert!(
        tool_names(&client)
            .await
            .contains(&"kid__dyn_echo".to_owned())
    );
    let echo = support::call(&client, "kid__dyn_echo", json!({ "text": "new" })).await;
    assert_eq!(text_of(&echo), "new");

    let before = seen.tool_list_changed.load(Ordering::SeqCst);
    support::call(&client, "kid__remove_tool", json!({ "name": "dyn_echo" })).await;
    wait_for("the second list_changed", || {
        seen.tool_list_changed.load(Ordering::SeqCst) > before
    })
    .await;
    assert!(
        !tool_names(&client)
            .await
            .contains(&"kid__dyn_echo".to_owned())
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_crash_fails_the_call_at_once_and_the_child_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server_over(dir.path(), json!({ "kid": {} }), "");
    let (client, seen) = connect(server.clone(), false).await;

    let client = Arc::new(client);
    let sleeper = {
        let client = client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result =
                support::call(&client, "kid__sleep", json!({ "ms": 10000, "steps": 10 })).await;
            (result, started)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let crashed_at = Instant::now();
    let crash = support::call(&client, "kid__crash", json!({ "code": 3 })).await;
    assert!(is_error(&crash));
    assert!(
        text_of(&crash).contains("exited with status 3"),
        "{crash:?}"
    );
    let (slept, _) = within("the in-flight call", sleeper).await.expect("join");
    assert!(is_error(&slept));
    assert!(text_of(&slept).contains("server `kid`"), "{slept:?}");
    assert!(
        crashed_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        crashed_at.elapsed()
    );

    wait_for("the restart", || {
        state_of(&server, "kid") == State::Ready && server.pool().tools.contains_key("kid__echo")
    })
    .await;
    let status = &server.children().status()[0];
    assert_eq!(status.restarts, 1);
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("status 3")
    );
    let echo = support::call(&client, "kid__echo", json!({ "text": "back" })).await;
    assert_eq!(text_of(&echo), "back");
    // Its tools went away and came back: the client heard of it.
    assert!(seen.tool_list_changed.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn broken_children_are_diagnosed_and_the_others_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server_over(
        dir.path(),
        json!({
            "good": {},
            "gone": { "command": "capmux-test-no-such-command" },
            "mute": { "args": ["--hang-init"] },
            "noisy": { "args": ["--garbage", "--stderr-lines", "500"] },
        }),
        "[servers]\nstartup_timeout = 1\nstartup_wait = 3\n",
    );
    let diagnostics = server.children().diagnostics();
    assert!(
        diagnostics.iter().any(|d| d
            .message
            .contains("`capmux-test-no-such-command` is not found on PATH")),
        "{diagnostics:?}"
    );
    let (client, _) = connect(server.clone(), false).await;
    let tools = tool_names(&client).await;
    assert!(tools.contains(&"good__echo".to_owned()));
    assert!(
        tools.contains(&"noisy__echo".to_owned()),
        "garbage is skipped: {tools:?}"
    );
    assert!(!tools.iter().any(|t| t.starts_with("mute__")));
    match state_of(&server, "mute") {
        State::Failed { reason } => assert!(reason.contains("handshake"), "{reason}"),
        other => panic!("mute is {other:?}"),
    }
    assert!(matches!(state_of(&server, "gone"), State::Failed { .. }));
    let echo = support::call(&client, "noisy__echo", json!({ "text": "ok" })).await;
    assert_eq!(text_of(&echo), "ok");
    let gone = support::call(&client, "good__echo", json!({ "text": "still" })).await;
    assert_eq!(text_of(&gone), "still");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_lazy_child_starts_on_first_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server_over(
        dir.path(),
        json!({ "kid": {}, "lazy": { "lazy": true } }),
        "",
    );
    let (client, _) = connect(server.clone(), false).await;
    assert_eq!(state_of(&server, "lazy"), State::Idle);
    assert!(
        !tool_names(&client)
            .await
            .iter()
            .any(|t| t.starts_with("lazy__"))
    );
    let pool = server.pool();
    let index = pool
        .servers
        .iter()
        .position(|s| s.label == "lazy")
        .expect("lazy server");
    let child = server.children().children()[index].clone();
    let result = within(
        "lazy call",
        child.call_tool(
            "echo",
            json!({ "text": "woke" }).as_object().cloned(),
            &capmux::child::Forward::default(),
        ),
    )
    .await
    .expect("call");
    assert_eq!(text_of(&result), "woke");
    assert_eq!(state_of(&server, "lazy"), State::Ready);
    wait_for("lazy tools listed", || {
        server.pool().tools.contains_key("lazy__echo")
    })
    .await;
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn fifty_children_start_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let servers: serde_json::Map<String, Value> = (0..50)
        .map(|i| (format!("c{i}"), json!({ "args": ["--tools", "20"] })))
        .collect();
    let server = server_over(dir.path(), Value::Object(servers), "");
    let (client, _) = connect(server.clone(), false).await;
    let tools = tool_names(&client).await;
    assert_eq!(tools.len(), 50 * 31, "every child's 31 tools");
    let echo = support::call(&client, "c49__tool_19", json!({ "x": 1 })).await;
    assert!(text_of(&echo).contains("\"x\":1"), "{echo:?}");
    let pids: Vec<u32> = server
        .children()
        .status()
        .iter()
        .filter_map(|s| s.pid)
        .collect();
    assert_eq!(pids.len(), 50);
    client.cancel().await.expect("close");
    server.shutdown().await;
    for pid in pids {
        assert!(support::gone(pid), "child {pid} outlived the shutdown");
    }
}

#[tokio::test]
async fn a_beforetoolcall_hook_blocks_a_childs_tool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let servers = servers_file(dir.path(), json!({ "kid": {} }));
    let hooked = support::package(
        dir.path(),
        "guard",
        json!({
            "permissions": ["shell:execute"],
            "hooks": [{
                "event": "beforeToolCall",
                "matcher": "kid__crash",
                "command": ["sh", "-c", "echo 'crashing is not allowed' >&2; exit 2"]
            }]
        }),
        &[],
    );
    let server = support::server(
        &[servers, hooked],
        "[packages.guard]\ngrants = [\"shell:execute\"]\n",
        dir.path(),
    );
    let (client, _) = connect(server.clone(), false).await;
    let blocked = support::call(&client, "kid__crash", json!({})).await;
    assert!(is_error(&blocked));
    assert!(
        text_of(&blocked).contains("crashing is not allowed"),
        "{blocked:?}"
    );
    assert_eq!(state_of(&server, "kid"), State::Ready);
    client.cancel().await.expect("close");
}

/// The pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// `capmux serve` over `servers`, as a process, with its children started.
fn serve_process(dir: &Path, servers: Value) -> (std::process::Child, Vec<u32>) {
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let (capmux, line) = serve_and_send(dir, servers, &init);
    assert!(line.contains("\"result\""), "{line}");
    let kids = children_of(capmux.id());
    (capmux, kids)
}

/// `capmux serve` over `servers`, as a process, sent `message`; returns it and the first line
/// it answered.
fn serve_and_send(dir: &Path, servers: Value, message: &Value) -> (std::process::Child, String) {
    use std::io::{BufRead, Write};
    let file = servers_file(dir, servers);
    let mut capmux = support::capmux(dir)
        .args(["--no-bundled", "--package"])
        .arg(&file)
        .arg("serve")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn capmux");
    writeln!(capmux.stdin.as_mut().expect("stdin"), "{message}").expect("write");
    let mut line = String::new();
    std::io::BufReader::new(capmux.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read the answer");
    (capmux, line)
}

#[test]
fn a_sigkilled_capmux_leaves_no_child_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut capmux, kids) = serve_process(dir.path(), json!({ "a": {}, "b": {}, "c": {} }));
    assert_eq!(kids.len(), 3, "three children: {kids:?}");
    capmux.kill().expect("SIGKILL");
    capmux.wait().expect("reap");
    for pid in kids {
        assert!(
            support::gone(pid),
            "child {pid} outlived a SIGKILLed capmux"
        );
    }
}

#[test]
fn stdin_eof_and_sigterm_stop_capmux_and_its_children_within_two_seconds() {
    for how in ["eof", "term"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut capmux, kids) = serve_process(dir.path(), json!({ "a": {}, "b": {} }));
        assert_eq!(kids.len(), 2);
        let started = Instant::now();
        if how == "eof" {
            drop(capmux.stdin.take());
        } else {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(capmux.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            )
            .expect("SIGTERM");
        }
        let status = loop {
            if let Some(status) = capmux.try_wait().expect("wait") {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{how}: capmux still running after 2 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "{how}: {status:?}");
        for pid in kids {
            assert!(support::gone(pid), "{how}: child {pid} outlived capmux");
        }
    }
}

#[test]
fn capmux_status_probes_each_child() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = servers_file(
        dir.path(),
        json!({ "kid": {}, "gone": { "command": "capmux-test-no-such-command" } }),
    );
    let output = support::capmux(dir.path())
        .args(["--no-bundled", "--package"])
        .arg(&file)
        .args(["status", "--json"])
        .output()
        .expect("run capmux status");
    assert_eq!(output.status.code(), Some(1), "a failed server exits 1");
    let reports: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let servers = &reports[0]["servers"];
    let kid = &servers[1];
    assert_eq!(kid["server"], "kid");
    assert_eq!(kid["state"], "ready");
    assert_eq!(kid["tools"], 11);
    let gone = &servers[0];
    assert_eq!(gone["state"], "failed");
    assert!(
        gone["reason"]
            .as_str()
            .unwrap_or("")
            .contains("not found on PATH"),
        "{gone}"
    );
}

#[test]
fn capmux_status_shows_the_children_of_a_running_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut capmux, kids) = serve_process(dir.path(), json!({ "a": {}, "b": { "lazy": true } }));
    assert_eq!(kids.len(), 1);
    let status = || {
        let output = support::capmux(dir.path())
            .args(["status", "--json"])
            .output()
            .expect("run capmux status");
        serde_json::from_slice::<Value>(&output.stdout).expect("JSON")
    };
    let started = Instant::now();
    let reports = loop {
        let reports = status();
        if reports[0]["servers"][0]["state"] == "ready" {
            break reports;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{reports}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(reports[0]["pid"], capmux.id());
    assert_eq!(reports[0]["servers"][0]["pid"], kids[0]);
    assert_eq!(reports[0]["servers"][1]["state"], "idle");
    drop(capmux.stdin.take());
    capmux.wait().expect("capmux exits");
    assert!(
        !dir.path()
            .join("run/capmux")
            .join(format!("serve-{}.json", capmux.id()))
            .exists(),
        "the status file is removed at shutdown"
    );
}

#[tokio::test]
async fn a_line_over_the_limit_fails_the_call_and_restarts_the_child() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server_over(dir.path(), json!({ "kid": {} }), "");
    let (client, _) = connect(server.clone(), false).await;
    // 17 MiB of text on one line: over rmcp's and capmux's 16 MiB limit.
    let started = Instant::now();
    let big = support::call(
        &client,
        "kid__echo",
        json!({ "text": "x", "repeat": 17 * 1024 * 1024 }),
    )
    .await;
    assert!(is_error(&big));
    assert!(
        text_of(&big).contains("longer than"),
        "{}",
        &text_of(&big)[..200.min(text_of(&big).len())]
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_for("the restart", || {
        state_of(&server, "kid") == State::Ready && server.pool().tools.contains_key("kid__echo")
    })
    .await;
    let echo = support::call(&client, "kid__echo", json!({ "text": "small" })).await;
    assert_eq!(text_of(&echo), "small");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn clashing_names_and_uris_of_children_follow_the_documented_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = binary().display().to_string();
    let duo = support::package(
        dir.path(),
        "duo",
        json!({
            "permissions": ["mcp:server"],
            "mcpServers": [
                { "name": "first", "transport": { "command": child } },
                { "name": "second", "transport": { "command": child, "args": ["--name", "second"] } }
            ]
        }),
        &[],
    );
    let server = support::server(
        &[duo],
        "[packages.duo]\ngrants = [\"mcp:server\"]\n",
        dir.path(),
    );
    let (client, _) = connect(server.clone(), false).await;
    let tools = tool_names(&client).await;
    assert!(tools.contains(&"duo__echo".to_owned()), "{tools:?}");
    assert!(tools.contains(&"duo__second__echo".to_owned()), "{tools:?}");
    let echo = support::call(&client, "duo__second__echo", json!({ "text": "2" })).await;
    assert_eq!(text_of(&echo), "2");
    // Both serve child://readme: the first keeps it, the second is reported.
    let resources = client.list_all_resources().await.expect("resources/list");
    assert_eq!(
        resources
            .iter()
            .filter(|r| r.uri == "child://readme")
            .count(),
        1
    );
    let pool = server.pool();
    assert!(
        pool.diagnostics().iter().any(|d| d
            .message
            .contains("resource `child://readme` is also offered by server `duo/first`")),
        "{:?}",
        pool.diagnostics()
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_package_without_the_grant_runs_no_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = binary().display().to_string();
    let pkg = support::package(
        dir.path(),
        "ungranted",
        json!({
            "permissions": ["mcp:server"],
            "mcpServers": [{ "name": "kid", "transport": { "command": child } }]
        }),
        &[],
    );
    let loaded = support::load(&[pkg], "", dir.path());
    assert!(loaded.pool.servers.is_empty());
    assert!(
        loaded
            .diagnostics
            .iter()
            .any(|d| d.message.contains("has not been granted `mcp:server`")),
        "{:?}",
        loaded.diagnostics
    );
}

#[test]
fn servers_files_in_every_shape_are_read_with_their_problems_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, value: Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, value.to_string()).expect("write");
        path
    };
    let wrapped = write(
        "claude_desktop_config.json",
        json!({ "mcpServers": {
            "time": { "command": "sh", "args": ["-c", "true"], "autoApprove": ["x"] },
            "web": { "url": "http://127.0.0.1:9/mcp", "headers": { "A": "b" }, "timeout": 500 },
            "old": { "type": "sse", "url": "http://127.0.0.1:9/sse" },
            "off": { "command": "sh", "disabled": true },
            "typo": { "comand": "sh" },
            "bad": { "command": "sh", "args": "not a list" },
        }}),
    );
    let vscode = write(
        "mcp.json",
        json!({ "servers": { "vs": { "type": "stdio", "command": "sh" } } }),
    );
    let flat = write(".mcp.json", json!({ "flat": { "command": "sh" } }));
    let loaded = support::load(&[wrapped, vscode, flat], "", dir.path());
    let folder = dir
        .path()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let mut servers: Vec<(String, String)> = loaded
        .pool
        .packages
        .iter()
        .flat_map(|a| {
            a.package
                .mcp_servers
                .iter()
                .map(move |s| (a.package.id.clone(), s.name.clone()))
        })
        .collect();
    servers.sort();
    let expected: Vec<(String, String)> = [
        (".mcp.json", "flat"),
        ("claude_desktop_config.json", "old"),
        ("claude_desktop_config.json", "time"),
        ("claude_desktop_config.json", "web"),
        ("mcp.json", "vs"),
    ]
    .iter()
    .map(|(file, server)| (format!("{folder}/{file}"), (*server).to_owned()))
    .collect();
    assert_eq!(servers, expected, "{:?}", loaded.diagnostics);
    let messages: Vec<&str> = loaded
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    let has = |needle: &str| messages.iter().any(|m| m.contains(needle));
    assert!(has("mcpServers.off: disabled; not started"), "{messages:?}");
    assert!(has("mcpServers.typo: unknown key `comand`"), "{messages:?}");
    assert!(
        has("mcpServers.bad.args: expected an array of strings"),
        "{messages:?}"
    );
    assert!(
        has("autoApprove: a setting of another client"),
        "{messages:?}"
    );
    let labels: Vec<&str> = loaded
        .pool
        .servers
        .iter()
        .map(|s| s.label.as_str())
        .collect();
    assert!(labels.contains(&"time") && labels.contains(&"vs") && labels.contains(&"flat"));
}

#[test]
fn a_client_that_skips_initialize_still_gets_the_children() {
    // A 2026-07-28 client sends no `initialize`: every request carries its own _meta.
    let dir = tempfile::tempdir().expect("tempdir");
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    let (mut capmux, line) = serve_and_send(dir.path(), json!({ "kid": {} }), &list);
    assert!(line.contains("\"kid__echo\""), "{line}");
    drop(capmux.stdin.take());
    assert!(capmux.wait().expect("capmux exits").success());
}

#[tokio::test]
async fn a_reload_starts_new_children_keeps_unchanged_ones_and_stops_removed_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    // At first nothing: the server starts without a single child.
    let server = support::server(&[], "", dir.path());
    let (client, seen) = connect(server.clone(), false).await;
    assert!(
        tool_names(&client)
            .await
            .iter()
            .all(|t| !t.starts_with("kid"))
    );

    let reload = |servers: Value| {
        let file = servers_file(dir.path(), servers);
        support::load(&[file], "", dir.path()).pool
    };
    let changes = |seen: &Seen| seen.tool_list_changed.load(Ordering::SeqCst);
    let before = changes(&seen);
    server
        .reload(reload(json!({ "kid": {}, "other": {} })))
        .await;
    wait_for("list_changed after adding two servers", || {
        changes(&seen) > before
    })
    .await;
    // Each child's catalogue joins the served lists when it is ready (each with its own
    // list_changed); wait until both have.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let names = tool_names(&client).await;
        if names.contains(&"kid__echo".to_owned()) && names.contains(&"other__echo".to_owned()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not both listed: {names:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        text_of(&support::call(&client, "kid__echo", json!({ "text": "hi" })).await),
        "hi"
    );
    let pid_of = |label: &str| {
        server
            .children()
            .status()
            .into_iter()
            .find(|s| s.server == label)
            .and_then(|s| s.pid)
    };
    let (kid, other) = (pid_of("kid"), pid_of("other"));

    // `other` goes, `kid` stays: the same process serves it.
    let before = changes(&seen);
    server.reload(reload(json!({ "kid": {} }))).await;
    wait_for("list_changed after removing a server", || {
        changes(&seen) > before
    })
    .await;
    let names = tool_names(&client).await;
    assert!(names.contains(&"kid__echo".to_owned()));
    assert!(!names.iter().any(|n| n.starts_with("other__")), "{names:?}");
    assert_eq!(pid_of("kid"), kid, "an unchanged child keeps running");
    assert!(
        support::gone(other.expect("other had a pid")),
        "a removed child is stopped"
    );
    client.cancel().await.expect("close");
    server.shutdown().await;
}
