//! The example child server `examples/mcp_child.rs`, spawned as a real process and driven
//! over its stdin/stdout by rmcp's client: the tools, pagination, progress, cancellation,
//! a crash, logging levels, sampling/elicitation/roots through the client, list_changed,
//! and the misbehaviour flags. Every await has a timeout; every process is waited for or
//! killed (kill on drop covers a failing test).

#![allow(
    deprecated,
    reason = "logging, sampling and roots are SEP-2577-deprecated in rmcp"
)]

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig,
    ClientRequest, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
    ElicitResult, ElicitationAction, ErrorCode, GetPromptRequestParams, Implementation, JsonObject,
    ListRootsResult, LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
    ProgressNotificationParam, ProtocolVersion, ReadResourceRequestParams, ResourceContents, Root,
    SamplingMessage, SetLevelRequestParams,
};
use rmcp::service::{
    NotificationContext, PeerRequestOptions, RequestContext, RunningService, ServiceError,
};
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::support::text_of;

/// The bound on every await.
const LIMIT: Duration = Duration::from_secs(10);

/// The tools the child always has, in listing order.
const FIXED_TOOLS: [&str; 11] = [
    "echo",
    "add",
    "sleep",
    "fail",
    "crash",
    "log",
    "sample",
    "elicit",
    "add_tool",
    "remove_tool",
    "roots",
];

/// The built example, (re)built once per test run: `cargo test --test it` alone does not
/// build examples, and a stale binary would test old code. Cargo reports the path, so a
/// custom target dir works too.
pub(crate) fn binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let release = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.file_name()? == "release"))
            .unwrap_or(false);
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo.args([
            "build",
            "--quiet",
            "--example",
            "mcp_child",
            "--message-format=json",
        ]);
        cargo.arg("--manifest-path").arg(&manifest);
        // Not the variables cargo set for this test: some build scripts (ring's) track
        // CARGO_MANIFEST_DIR, and inheriting it would rebuild half the tree, twice.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_BIN_EXE_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_MANIFEST_LINKS",
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&key.as_ref())
            {
                cargo.env_remove(key.as_ref());
            }
        }
        if release {
            cargo.arg("--release");
        }
        let output = cargo.output().expect("run cargo build --example mcp_child");
        assert!(
            output.status.success(),
            "cargo build --example mcp_child failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let path = stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "mcp_child")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| {
                let profile = if release { "release" } else { "debug" };
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("target")
                    .join(profile)
                    .join("examples/mcp_child")
            });
        assert!(path.is_file(), "no example binary at {}", path.display());
        path
    })
}

/// Awaits `future` for at most [`LIMIT`].
pub(crate) async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {LIMIT:?}"))
}

/// Polls `done` until it holds, for at most [`LIMIT`].
pub(crate) async fn wait_for(what: &str, done: impl Fn() -> bool) {
    within(what, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// What the client saw: notifications and the server-to-client requests it answered.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) progress: Mutex<Vec<ProgressNotificationParam>>,
    pub(crate) logs: Mutex<Vec<LoggingMessageNotificationParam>>,
    pub(crate) tool_list_changed: AtomicUsize,
    pub(crate) sampled: Mutex<Vec<CreateMessageRequestParams>>,
    pub(crate) elicited: Mutex<Vec<(String, Value)>>,
}

impl Seen {
    pub(crate) fn progress(&self) -> Vec<ProgressNotificationParam> {
        self.progress.lock().expect("lock").clone()
    }
    pub(crate) fn logs(&self) -> Vec<LoggingMessageNotificationParam> {
        self.logs.lock().expect("lock").clone()
    }
}

/// The test's client: with `capable`, it declares sampling, elicitation and roots and
/// answers them with canned values; without, it declares nothing.
#[derive(Clone)]
pub(crate) struct TestClient {
    pub(crate) capable: bool,
    pub(crate) seen: Arc<Seen>,
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        let capabilities = if self.capable {
            ClientCapabilities::builder()
                .enable_roots()
                .enable_sampling()
                .enable_elicitation()
                .build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(
            capabilities,
            Implementation::new("child-example-test", "1.0.0"),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _cx: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let prompt = params
            .messages
            .iter()
            .flat_map(|m| m.content.iter())
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join(" ");
        self.seen.sampled.lock().expect("lock").push(params);
        let answer = SamplingMessage::assistant_text(format!("canned answer to: {prompt}"));
        Ok(CreateMessageResult::new(answer, "test-model".to_owned())
            .with_stop_reason(CreateMessageResult::STOP_REASON_END_TURN))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _cx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        match request {
            ElicitRequestParams::FormElicitationParams {
                message,
                requested_schema,
                ..
            } => {
                let schema = serde_json::to_value(&requested_schema).expect("schema as JSON");
                self.seen
                    .elicited
                    .lock()
                    .expect("lock")
                    .push((message, schema));
                Ok(ElicitResult::new(ElicitationAction::Accept)
                    .with_content(json!({ "answer": "forty-two" })))
            }
            _ => Ok(ElicitResult::new(ElicitationAction::Decline)),
        }
    }

    async fn list_roots(
        &self,
        _cx: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::new(vec![
            Root::new("file:///work/project").with_name("project"),
            Root::new("file:///tmp/scratch"),
        ]))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _cx: NotificationContext<RoleClient>,
    ) {
        self.seen.progress.lock().expect("lock").push(params);
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _cx: NotificationContext<RoleClient>,
    ) {
        self.seen.logs.lock().expect("lock").push(params);
    }

    async fn on_tool_list_changed(&self, _cx: NotificationContext<RoleClient>) {
        self.seen.tool_list_changed.fetch_add(1, Ordering::SeqCst);
    }
}

/// A spawned `mcp_child` whose stderr is collected; killed if dropped while running.
struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    fn spawn(args: &[&str]) -> (Self, ChildStdout, ChildStdin) {
        let mut child = tokio::process::Command::new(binary())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn mcp_child");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let mut pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        (Process { child, stderr }, stdout, stdin)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Waits for the process to exit on its own; returns its exit code.
    async fn exit_code(&mut self) -> Option<i32> {
        let status = within("child exit", self.child.wait()).await.expect("wait");
        status.code()
    }
}

/// A connected child: the process, the client and what the client saw.
struct Connected {
    process: Process,
    client: RunningService<RoleClient, TestClient>,
    seen: Arc<Seen>,
}

impl Connected {
    async fn new(args: &[&str]) -> Self {
        Self::with_client(args, true).await
    }

    async fn with_client(args: &[&str], capable: bool) -> Self {
        let (process, stdout, stdin) = Process::spawn(args);
        let seen = Arc::new(Seen::default());
        let handler = TestClient {
            capable,
            seen: seen.clone(),
        };
        let client = within("initialize", handler.serve((stdout, stdin)))
            .await
            .expect("client initializes");
        Connected {
            process,
            client,
            seen,
        }
    }

    async fn call(&self, name: &'static str, arguments: Value) -> CallToolResult {
        self.try_call(name, arguments)
            .await
            .unwrap_or_else(|e| panic!("tools/call {name}: {e}"))
    }

    async fn try_call(
        &self,
        name: &'static str,
        arguments: Value,
    ) -> Result<CallToolResult, ServiceError> {
        within(name, self.client.call_tool(params(name, arguments))).await
    }

    async fn tool_names(&self) -> Vec<String> {
        within("tools/list", self.client.list_all_tools())
            .await
            .expect("tools/list")
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    /// Closes the connection (stdin EOF) and checks that the child exits cleanly.
    async fn finish(mut self) {
        within("close the client", self.client.cancel())
            .await
            .expect("client loop");
        assert_eq!(
            self.process.exit_code().await,
            Some(0),
            "{}",
            self.process.stderr()
        );
    }
}

fn params(name: &'static str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object");
    };
    CallToolRequestParams::new(name).with_arguments(arguments)
}

#[tokio::test]
async fn initialize_reports_the_name_instructions_and_capabilities() {
    let child = Connected::new(&["--name", "child-a"]).await;
    let info = child.client.peer_info().expect("server info");
    let server = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server.name, "child-a");
    assert_eq!(
        info.instructions.as_deref(),
        Some("An example MCP server for capmux tests.")
    );
    let caps = &info.capabilities;
    assert!(caps.logging.is_some() && caps.prompts.is_some() && caps.resources.is_some());
    let tools = caps.tools.as_ref().expect("tools capability");
    assert_eq!(tools.list_changed, Some(true));

    let prompts = within("prompts/list", child.client.list_all_prompts())
        .await
        .expect("prompts");
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0].name, "greet");
    let mut arguments = JsonObject::new();
    arguments.insert("name".into(), json!("Ada"));
    let greet = GetPromptRequestParams::new("greet").with_arguments(arguments);
    let prompt = within("prompts/get", child.client.get_prompt(greet))
        .await
        .expect("greet");
    let message = serde_json::to_value(&prompt.messages[0]).expect("json");
    assert_eq!(message["content"]["text"], "Hello, Ada!");

    let resources = within("resources/list", child.client.list_all_resources())
        .await
        .expect("resources");
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].uri, "child://readme");
    let read = ReadResourceRequestParams::new("child://readme");
    let contents = within("resources/read", child.client.read_resource(read))
        .await
        .expect("readme")
        .contents;
    match &contents[..] {
        [ResourceContents::TextResourceContents { text, .. }] => {
            assert!(text.contains("capmux tests"), "{text}");
        }
        other => panic!("unexpected contents {other:?}"),
    }
    child.finish().await;
}

#[tokio::test]
async fn tools_are_listed_across_pages_with_extra_tools() {
    let child = Connected::new(&["--page-size", "3", "--tools", "4"]).await;
    let mut expected: Vec<String> = FIXED_TOOLS.iter().map(|s| s.to_string()).collect();
    expected.extend((0..4).map(|i| format!("tool_{i}")));
    assert_eq!(child.tool_names().await, expected);

    // Page by page: every page holds at most 3 tools and the cursor chain ends.
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let request = cursor.map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
        let page = within("tools/list page", child.client.list_tools(request))
            .await
            .expect("page");
        assert!(page.tools.len() <= 3);
        pages.push(page.tools.len());
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, [3, 3, 3, 3, 3]);

    let result = child.call("tool_2", json!({ "x": 1, "y": "two" })).await;
    let echoed: Value = serde_json::from_str(&text_of(&result)).expect("json text");
    assert_eq!(echoed, json!({ "x": 1, "y": "two" }));
    child.finish().await;
}

#[tokio::test]
async fn echo_add_and_fail_answer() {
    let child = Connected::new(&[]).await;
    let echo = child.call("echo", json!({ "text": "hello child" })).await;
    assert_eq!(text_of(&echo), "hello child");
    assert_eq!(
        echo.structured_content,
        Some(json!({ "text": "hello child" }))
    );
    assert_eq!(echo.is_error, Some(false));

    let add = child.call("add", json!({ "a": 2, "b": 3.5 })).await;
    assert_eq!(text_of(&add), "5.5");

    let fail = child.call("fail", json!({ "message": "it broke" })).await;
    assert_eq!(fail.is_error, Some(true));
    assert_eq!(text_of(&fail), "it broke");

    let bad = child.call("add", json!({ "a": "two" })).await;
    assert_eq!(bad.is_error, Some(true), "bad arguments are a tool error");

    match child.try_call("no_such_tool", json!({})).await {
        Err(ServiceError::McpError(e)) => assert_eq!(e.code, ErrorCode::INVALID_PARAMS),
        other => panic!("unknown tool: {other:?}"),
    }
    child.finish().await;
}

#[tokio::test]
async fn sleep_reports_progress_in_order() {
    let child = Connected::new(&[]).await;
    let result = child.call("sleep", json!({ "ms": 250, "steps": 5 })).await;
    assert_eq!(text_of(&result), "slept 250 ms");
    // Notifications are handled on their own tasks: the last may trail the response.
    wait_for("5 progress notifications", || {
        child.seen.progress().len() == 5
    })
    .await;
    let progress = child.seen.progress();
    let steps: Vec<(f64, Option<f64>, Option<String>)> = progress
        .iter()
        .map(|p| (p.progress, p.total, p.message.clone()))
        .collect();
    let expected: Vec<(f64, Option<f64>, Option<String>)> = (1..=5)
        .map(|i| (f64::from(i), Some(5.0), Some(format!("step {i} of 5"))))
        .collect();
    assert_eq!(steps, expected);
    assert!(
        progress
            .iter()
            .all(|p| p.progress_token == progress[0].progress_token),
        "one token for the one request"
    );

    let default_steps = child.call("sleep", json!({ "ms": 50 })).await;
    assert_eq!(default_steps.is_error, Some(false));
    wait_for("5 more progress notifications", || {
        child.seen.progress().len() == 10
    })
    .await;
    child.finish().await;
}

/// Waits until a long sleep has reported its first step, for the cancellation tests.
async fn first_step(child: &Connected) {
    wait_for("the first progress notification", || {
        !child.seen.progress().is_empty()
    })
    .await;
}

/// After a cancellation: the child logged it, and no further progress arrives.
async fn assert_stopped_early(child: &Connected) {
    wait_for("the child's cancellation log line", || {
        child.process.stderr().contains("sleep cancelled at step")
    })
    .await;
    let count = child.seen.progress().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        child.seen.progress().len(),
        count,
        "progress after cancellation"
    );
    assert!(count < 50, "the sleep ran to its end");
    // The child still serves.
    let echo = child.call("echo", json!({ "text": "still here" })).await;
    assert_eq!(text_of(&echo), "still here");
}

#[tokio::test]
async fn dropping_a_sleep_call_cancels_it() {
    let child = Connected::new(&[]).await;
    let call = child
        .client
        .call_tool(params("sleep", json!({ "ms": 10_000, "steps": 50 })));
    tokio::select! {
        result = call => panic!("a 10 s sleep answered early: {result:?}"),
        () = first_step(&child) => {}
    }
    // The call future is dropped here: rmcp sends notifications/cancelled.
    assert_stopped_early(&child).await;
    child.finish().await;
}

#[tokio::test]
async fn notifications_cancelled_ends_a_sleep_early() {
    let child = Connected::new(&[]).await;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params(
        "sleep",
        json!({ "ms": 10_000, "steps": 50 }),
    )));
    let handle = within(
        "send sleep",
        child
            .client
            .send_request_with_option(request, PeerRequestOptions::no_options()),
    )
    .await
    .expect("sent");
    first_step(&child).await;
    assert_eq!(
        child.seen.progress()[0].progress_token,
        handle.progress_token
    );
    within(
        "send notifications/cancelled",
        handle.cancel(Some("test".into())),
    )
    .await
    .expect("cancelled");
    assert_stopped_early(&child).await;
    child.finish().await;
}

#[tokio::test]
async fn crash_closes_the_connection_and_exits_with_the_code() {
    for (arguments, code) in [(json!({ "code": 7 }), 7), (json!({}), 3)] {
        let mut child = Connected::new(&[]).await;
        match child.try_call("crash", arguments).await {
            Err(ServiceError::TransportClosed | ServiceError::TransportSend(_)) => {}
            other => panic!("crash answered: {other:?}"),
        }
        assert_eq!(child.process.exit_code().await, Some(code));
        let reason = within("client loop end", child.client.waiting()).await;
        assert!(reason.is_ok(), "{reason:?}");
    }
}

#[tokio::test]
async fn log_respects_set_level() {
    let child = Connected::new(&["--name", "logger-child"]).await;
    // No level set: everything is sent.
    let logged = child
        .call("log", json!({ "level": "debug", "message": "first" }))
        .await;
    assert_eq!(text_of(&logged), "logged");
    wait_for("the debug message", || child.seen.logs().len() == 1).await;

    within(
        "logging/setLevel",
        child
            .client
            .set_level(SetLevelRequestParams::new(LoggingLevel::Warning)),
    )
    .await
    .expect("setLevel");
    let below = child
        .call("log", json!({ "level": "info", "message": "quiet" }))
        .await;
    assert_eq!(text_of(&below), "logged");
    child
        .call("log", json!({ "level": "error", "message": "loud" }))
        .await;
    wait_for("the error message", || child.seen.logs().len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let logs = child.seen.logs();
    let got: Vec<(LoggingLevel, Value, Option<String>)> = logs
        .iter()
        .map(|l| (l.level, l.data.clone(), l.logger.clone()))
        .collect();
    let logger = Some("logger-child".to_owned());
    assert_eq!(
        got,
        [
            (LoggingLevel::Debug, json!("first"), logger.clone()),
            (LoggingLevel::Error, json!("loud"), logger),
        ]
    );
    let bad = child
        .call("log", json!({ "level": "loudest", "message": "x" }))
        .await;
    assert_eq!(bad.is_error, Some(true));
    child.finish().await;
}

#[tokio::test]
async fn sample_elicit_and_roots_go_through_the_client() {
    let child = Connected::new(&[]).await;
    let sample = child
        .call("sample", json!({ "prompt": "what is 6 x 7?" }))
        .await;
    assert_eq!(sample.is_error, Some(false), "{}", text_of(&sample));
    assert_eq!(text_of(&sample), "canned answer to: what is 6 x 7?");
    assert_eq!(child.seen.sampled.lock().expect("lock").len(), 1);

    let elicit = child
        .call("elicit", json!({ "message": "Your answer?" }))
        .await;
    assert_eq!(elicit.is_error, Some(false), "{}", text_of(&elicit));
    let answer: Value = serde_json::from_str(&text_of(&elicit)).expect("json text");
    assert_eq!(
        answer,
        json!({ "action": "accept", "content": { "answer": "forty-two" } })
    );
    let elicited = child.seen.elicited.lock().expect("lock").clone();
    assert_eq!(elicited.len(), 1);
    assert_eq!(elicited[0].0, "Your answer?");
    assert_eq!(elicited[0].1["properties"]["answer"]["type"], "string");
    assert_eq!(elicited[0].1["required"], json!(["answer"]));

    let roots = child.call("roots", json!({})).await;
    assert_eq!(roots.is_error, Some(false), "{}", text_of(&roots));
    let roots: Value = serde_json::from_str(&text_of(&roots)).expect("json text");
    assert_eq!(
        roots,
        json!([
            { "uri": "file:///work/project", "name": "project" },
            { "uri": "file:///tmp/scratch" }
        ])
    );
    child.finish().await;
}

#[tokio::test]
async fn without_client_capabilities_sample_elicit_and_roots_are_tool_errors() {
    let child = Connected::with_client(&[], false).await;
    for (tool, arguments, what) in [
        ("sample", json!({ "prompt": "p" }), "sampling"),
        ("elicit", json!({ "message": "m" }), "elicitation"),
        ("roots", json!({}), "roots"),
    ] {
        let result = child.call(tool, arguments).await;
        assert_eq!(result.is_error, Some(true), "{tool}");
        assert_eq!(
            text_of(&result),
            format!("the client does not support {what}")
        );
    }
    child.finish().await;
}

#[tokio::test]
async fn add_tool_and_remove_tool_notify_list_changed() {
    let child = Connected::new(&["--page-size", "4"]).await;
    let changed = || child.seen.tool_list_changed.load(Ordering::SeqCst);

    let added = child.call("add_tool", json!({ "name": "dyn_echo" })).await;
    assert_eq!(text_of(&added), "added");
    wait_for("tools/list_changed after add_tool", || changed() == 1).await;
    let names = child.tool_names().await;
    assert_eq!(names.last().map(String::as_str), Some("dyn_echo"));
    let echo = child.call("dyn_echo", json!({ "text": "dynamic" })).await;
    assert_eq!(text_of(&echo), "dynamic");

    let taken = child.call("add_tool", json!({ "name": "echo" })).await;
    assert_eq!(taken.is_error, Some(true), "a fixed name is taken");

    let removed = child
        .call("remove_tool", json!({ "name": "dyn_echo" }))
        .await;
    assert_eq!(text_of(&removed), "removed");
    wait_for("tools/list_changed after remove_tool", || changed() == 2).await;
    assert!(!child.tool_names().await.contains(&"dyn_echo".to_owned()));
    assert!(
        child
            .try_call("dyn_echo", json!({ "text": "x" }))
            .await
            .is_err()
    );

    let absent = child
        .call("remove_tool", json!({ "name": "dyn_echo" }))
        .await;
    assert_eq!(absent.is_error, Some(true));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(changed(), 2, "no list_changed without a change");
    child.finish().await;
}

#[tokio::test]
async fn garbage_on_stdout_is_skipped_by_the_client() {
    let child = Connected::new(&["--garbage"]).await;
    let echo = child.call("echo", json!({ "text": "after garbage" })).await;
    assert_eq!(text_of(&echo), "after garbage");
    child.finish().await;
}

#[tokio::test]
async fn hang_init_never_answers_initialize() {
    let (mut process, stdout, stdin) = Process::spawn(&["--hang-init"]);
    let handler = TestClient {
        capable: true,
        seen: Arc::default(),
    };
    let init = tokio::time::timeout(Duration::from_secs(1), handler.serve((stdout, stdin))).await;
    assert!(init.is_err(), "initialize was answered");
    wait_for("the child's --hang-init log line", || {
        process
            .stderr()
            .contains("reading stdin without ever answering")
    })
    .await;
    // Dropping the client closed stdin (the child then exits by itself); kill it anyway,
    // as a supervisor would.
    let _ = process.child.start_kill();
    within("the killed child", process.child.wait())
        .await
        .expect("wait");
}

#[tokio::test]
async fn stderr_lines_are_written_at_start() {
    let child = Connected::new(&["--stderr-lines", "3"]).await;
    wait_for("3 stderr lines", || {
        child
            .process
            .stderr()
            .contains("mcp_child stderr line 3 of 3")
    })
    .await;
    let stderr = child.process.stderr();
    assert!(
        stderr.starts_with("mcp_child stderr line 1 of 3\n"),
        "{stderr}"
    );
    child.finish().await;
}

#[test]
fn help_explains_the_flags() {
    let output = std::process::Command::new(binary())
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--name",
        "--tools",
        "--garbage",
        "--hang-init",
        "--page-size",
        "--stderr-lines",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}
