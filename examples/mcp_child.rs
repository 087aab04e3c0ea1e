//! `mcp_child`: a small, real MCP server on stdio for tests that need a child server to
//! spawn, supervise and re-expose. It covers what a child can do to its client: answer,
//! fail, crash, report progress, honour cancellation, log, ask for sampling, elicitation
//! and roots, change its tool list, and misbehave on purpose (`--garbage`, `--hang-init`).
//!
//! Build: `cargo build --example mcp_child` (binary: `target/debug/examples/mcp_child`).
//! Logs go to stderr (`MCP_CHILD_LOG`, default `mcp_child=info,rmcp=warn`); stdout carries
//! only MCP, except the one deliberate non-JSON line of `--garbage`.

// Logging, sampling and roots are deprecated by SEP-2577 in rmcp 3.9 but still part of the
// 2025-11-25 protocol every current host speaks; this server exists to exercise them.
#![allow(
    deprecated,
    reason = "logging, sampling and roots are SEP-2577-deprecated in rmcp"
)]

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use clap::Parser;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientResult, ContentBlock,
    CreateMessageRequestParams, ElicitRequest, ElicitRequestParams, ElicitationSchema,
    GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation, JsonObject,
    ListPromptsResult, ListResourcesResult, ListToolsResult, LoggingLevel,
    LoggingMessageNotificationParam, PaginatedRequestParams, ProgressNotificationParam, Prompt,
    PromptArgument, PromptMessage, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, Role, SamplingMessage, ServerCapabilities,
    ServerConfig, ServerRequest, SetLevelRequestParams, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;

const INSTRUCTIONS: &str = "An example MCP server for capmux tests.";
const README_URI: &str = "child://readme";
const NOTE_TEMPLATE: &str = "child://notes/{name}";
const README_TEXT: &str = "mcp_child: an example MCP server for capmux tests.\n\
Tools: echo, add, sleep, fail, crash, log, sample, elicit, add_tool, remove_tool, roots.\n";

const AFTER_HELP: &str = "\
Tools: echo {text, repeat?}, add {a, b}, sleep {ms, steps?=5}, fail {message}, crash {code?=3},
log {level, message}, sample {prompt}, elicit {message}, add_tool {name}, remove_tool {name},
roots {}; with --tools N also tool_0 .. tool_{N-1} (echo their arguments as JSON).
Prompt: greet {name}. Resource: child://readme; template child://notes/{name}.

Logs go to stderr (MCP_CHILD_LOG, an EnvFilter, default mcp_child=info,rmcp=warn);
stdout carries only MCP.";

/// An example MCP server on stdio for capmux tests.
#[derive(Parser, Debug, Clone)]
#[command(name = "mcp_child", after_help = AFTER_HELP)]
struct Cli {
    /// The serverInfo name sent in the initialize result.
    #[arg(long, default_value = "mcp-child", value_name = "NAME")]
    name: String,
    /// Add N extra tools tool_0 .. tool_{N-1} that echo their arguments (scale tests).
    #[arg(long, default_value_t = 0, value_name = "N")]
    tools: usize,
    /// Print one non-JSON line on stdout before serving.
    #[arg(long)]
    garbage: bool,
    /// Never answer initialize: read and discard stdin until it closes, then exit 0.
    #[arg(long)]
    hang_init: bool,
    /// Paginate tools/list: at most N tools per page (0 = one page).
    #[arg(long, default_value_t = 0, value_name = "N")]
    page_size: usize,
    /// Write N lines to stderr at start.
    #[arg(long, default_value_t = 0, value_name = "N")]
    stderr_lines: usize,
}

/// The fixed tools: name, description, input schema.
fn fixed_tools() -> Vec<Tool> {
    let text_schema = json!({
        "type": "object",
        "properties": { "text": { "type": "string" } },
        "required": ["text"]
    });
    let mut echo = Tool::new(
        "echo",
        "Returns the text, as text and as structuredContent {text}.",
        schema(text_schema.clone()),
    );
    echo = echo.with_raw_output_schema(Arc::new(schema(text_schema)));
    vec![
        echo,
        Tool::new(
            "add",
            "Returns a + b as text.",
            schema(json!({
                "type": "object",
                "properties": { "a": { "type": "number" }, "b": { "type": "number" } },
                "required": ["a", "b"]
            })),
        ),
        Tool::new(
            "sleep",
            "Sleeps ms milliseconds in `steps` slices (default 5), reporting progress after \
             each slice when asked to; stops early when cancelled.",
            schema(json!({
                "type": "object",
                "properties": {
                    "ms": { "type": "integer", "minimum": 0 },
                    "steps": { "type": "integer", "minimum": 1, "default": 5 }
                },
                "required": ["ms"]
            })),
        ),
        Tool::new(
            "fail",
            "Fails with the message (a tool error, isError: true).",
            schema(json!({
                "type": "object",
                "properties": { "message": { "type": "string" } },
                "required": ["message"]
            })),
        ),
        Tool::new(
            "crash",
            "Exits the process at once with the code (default 3), without answering.",
            schema(json!({
                "type": "object",
                "properties": { "code": { "type": "integer", "default": 3 } }
            })),
        ),
        Tool::new(
            "log",
            "Sends a notifications/message at the level (unless below the level set by \
             logging/setLevel), then returns \"logged\".",
            schema(json!({
                "type": "object",
                "properties": {
                    "level": { "type": "string", "enum": [
                        "debug", "info", "notice", "warning", "error", "critical", "alert",
                        "emergency"
                    ] },
                    "message": { "type": "string" }
                },
                "required": ["level", "message"]
            })),
        ),
        Tool::new(
            "sample",
            "Asks the client's model (sampling/createMessage) and returns its text.",
            schema(json!({
                "type": "object",
                "properties": { "prompt": { "type": "string" } },
                "required": ["prompt"]
            })),
        ),
        Tool::new(
            "elicit",
            "Asks the user (elicitation/create, one string field `answer`) and returns \
             {action, content} as JSON text.",
            schema(json!({
                "type": "object",
                "properties": { "message": { "type": "string" } },
                "required": ["message"]
            })),
        ),
        Tool::new(
            "add_tool",
            "Adds a tool of that name that works like echo, and notifies list_changed.",
            name_schema(),
        ),
        Tool::new(
            "remove_tool",
            "Removes a tool added by add_tool, and notifies list_changed.",
            name_schema(),
        ),
        Tool::new(
            "roots",
            "Asks the client for its roots (roots/list) and returns them as JSON text.",
            schema(json!({ "type": "object", "properties": {} })),
        ),
    ]
}

fn name_schema() -> JsonObject {
    schema(json!({
        "type": "object",
        "properties": { "name": { "type": "string" } },
        "required": ["name"]
    }))
}

fn schema(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// A tool `tool_i` of `--tools N`.
fn extra_tool(i: usize) -> Tool {
    Tool::new(
        format!("tool_{i}"),
        "Returns its arguments as JSON text.",
        schema(json!({ "type": "object", "additionalProperties": true })),
    )
}

/// A tool added by `add_tool`: works like echo.
fn dynamic_tool(name: &str) -> Tool {
    Tool::new(
        name.to_owned(),
        "Added by add_tool: returns the text.",
        schema(json!({
            "type": "object",
            "properties": { "text": { "type": "string" } },
            "required": ["text"]
        })),
    )
}

#[derive(Deserialize)]
struct TextArgs {
    text: String,
    /// Repeats the text this many times (a way to send one huge line).
    repeat: Option<usize>,
}
#[derive(Deserialize)]
struct AddArgs {
    a: f64,
    b: f64,
}
#[derive(Deserialize)]
struct SleepArgs {
    ms: u64,
    steps: Option<u64>,
}
#[derive(Deserialize)]
struct MessageArgs {
    message: String,
}
#[derive(Deserialize)]
struct CrashArgs {
    code: Option<i32>,
}
#[derive(Deserialize)]
struct LogArgs {
    level: LoggingLevel,
    message: String,
}
#[derive(Deserialize)]
struct PromptArgs {
    prompt: String,
}
#[derive(Deserialize)]
struct NameArgs {
    name: String,
}

/// Parses a tool's arguments; the error is the tool error to return.
fn args<T: serde::de::DeserializeOwned>(req: &CallToolRequestParams) -> Result<T, CallToolResult> {
    let value = Value::Object(req.arguments.clone().unwrap_or_default());
    serde_json::from_value(value).map_err(|e| tool_error(format!("invalid arguments: {e}")))
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

fn echo_result(t: String) -> CallToolResult {
    let mut result = text(t.clone());
    result.structured_content = Some(json!({ "text": t }));
    result
}

/// Severity order of the MCP logging levels (debug lowest).
fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

struct State {
    /// Tools added by `add_tool`, in name order.
    dynamic: BTreeSet<String>,
    /// The level set by `logging/setLevel`; `None` = send everything.
    min_level: Option<LoggingLevel>,
}

#[derive(Clone)]
struct Child {
    cli: Arc<Cli>,
    state: Arc<Mutex<State>>,
}

impl Child {
    fn new(cli: Cli) -> Self {
        Child {
            cli: Arc::new(cli),
            state: Arc::new(Mutex::new(State {
                dynamic: BTreeSet::new(),
                min_level: None,
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every tool, in listing order: fixed, `tool_i`, then added ones.
    fn all_tools(&self) -> Vec<Tool> {
        let mut tools = fixed_tools();
        tools.extend((0..self.cli.tools).map(extra_tool));
        tools.extend(self.state().dynamic.iter().map(|n| dynamic_tool(n)));
        tools
    }

    fn is_extra_tool(&self, name: &str) -> bool {
        name.strip_prefix("tool_")
            .and_then(|i| i.parse::<usize>().ok())
            .is_some_and(|i| i < self.cli.tools && name == format!("tool_{i}"))
    }

    async fn sleep(
        &self,
        a: SleepArgs,
        cx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let steps = a.steps.unwrap_or(5);
        if steps == 0 {
            return Ok(tool_error("steps must be at least 1"));
        }
        let slice = Duration::from_millis(a.ms) / u32::try_from(steps).unwrap_or(u32::MAX);
        let token = cx.meta.get_progress_token();
        for step in 1..=steps {
            tokio::select! {
                () = tokio::time::sleep(slice) => {}
                () = cx.ct.cancelled() => {
                    tracing::info!("sleep cancelled at step {step} of {steps}");
                    // Also to the client, so a test behind a proxy can see it arrive.
                    let _ = cx.peer.notify_logging_message(
                        LoggingMessageNotificationParam::new(
                            LoggingLevel::Info,
                            json!(format!("sleep cancelled at step {step} of {steps}")),
                        ),
                    ).await;
                    return Ok(tool_error("cancelled"));
                }
            }
            if let Some(token) = &token {
                let progress = ProgressNotificationParam::new(token.clone(), step as f64)
                    .with_total(steps as f64)
                    .with_message(format!("step {step} of {steps}"));
                if let Err(e) = cx.peer.notify_progress(progress).await {
                    tracing::warn!("progress notification failed: {e}");
                }
            }
        }
        Ok(text(format!("slept {} ms", a.ms)))
    }

    async fn log(
        &self,
        a: LogArgs,
        cx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let min = self.state().min_level;
        if min.is_none_or(|min| rank(a.level) >= rank(min)) {
            let param = LoggingMessageNotificationParam::new(a.level, Value::String(a.message))
                .with_logger(self.cli.name.clone());
            if let Err(e) = cx.peer.notify_logging_message(param).await {
                return Ok(tool_error(format!("could not send the log message: {e}")));
            }
        }
        Ok(text("logged"))
    }

    async fn sample(
        &self,
        a: PromptArgs,
        cx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let capable = cx
            .peer
            .peer_info()
            .is_some_and(|c| c.capabilities.sampling.is_some());
        if !capable {
            return Ok(tool_error("the client does not support sampling"));
        }
        let params =
            CreateMessageRequestParams::new(vec![SamplingMessage::user_text(a.prompt)], 256);
        match cx.peer.create_message(params).await {
            Ok(result) => {
                let answer = result
                    .message
                    .content
                    .iter()
                    .filter_map(|block| block.as_text().map(|t| t.text.clone()))
                    .collect::<Vec<_>>()
                    .join("\n");
                Ok(text(answer))
            }
            Err(e) => Ok(tool_error(format!("sampling failed: {e}"))),
        }
    }

    async fn elicit(
        &self,
        a: MessageArgs,
        cx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let capable = cx
            .peer
            .peer_info()
            .is_some_and(|c| c.capabilities.elicitation.is_some());
        if !capable {
            return Ok(tool_error("the client does not support elicitation"));
        }
        // Peer::create_elicitation needs rmcp's `elicitation` feature; the request itself
        // does not, so it is sent as a plain ServerRequest.
        let requested_schema = match ElicitationSchema::builder()
            .required_string("answer")
            .build()
        {
            Ok(schema) => schema,
            Err(e) => return Err(ErrorData::internal_error(e, None)),
        };
        let params = ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: a.message,
            requested_schema,
        };
        let request = ServerRequest::ElicitRequest(ElicitRequest::new(params));
        match cx.peer.send_request(request).await {
            Ok(ClientResult::ElicitResult(result)) => {
                let body = json!({ "action": result.action, "content": result.content });
                Ok(text(body.to_string()))
            }
            Ok(_) => Ok(tool_error("elicitation failed: unexpected response")),
            Err(e) => Ok(tool_error(format!("elicitation failed: {e}"))),
        }
    }

    async fn roots(&self, cx: &RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        let capable = cx
            .peer
            .peer_info()
            .is_some_and(|c| c.capabilities.roots.is_some());
        if !capable {
            return Ok(tool_error("the client does not support roots"));
        }
        match cx.peer.list_roots().await {
            Ok(result) => match serde_json::to_string(&result.roots) {
                Ok(json) => Ok(text(json)),
                Err(e) => Ok(tool_error(format!("roots: {e}"))),
            },
            Err(e) => Ok(tool_error(format!("roots/list failed: {e}"))),
        }
    }

    async fn change_tools(
        &self,
        name: String,
        add: bool,
        cx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if add && name.is_empty() {
            return Ok(tool_error("the name must not be empty"));
        }
        let fixed = fixed_tools().iter().any(|t| t.name == name) || self.is_extra_tool(&name);
        {
            // One lock for the check and the change: concurrent calls cannot both win.
            let mut state = self.state();
            if add && (fixed || !state.dynamic.insert(name.clone())) {
                return Ok(tool_error(format!("a tool named {name:?} exists already")));
            }
            if !add && !state.dynamic.remove(&name) {
                return Ok(tool_error(format!("no added tool named {name:?}")));
            }
        }
        if let Err(e) = cx.peer.notify_tool_list_changed().await {
            tracing::warn!("list_changed notification failed: {e}");
        }
        Ok(text(if add { "added" } else { "removed" }))
    }
}

impl ServerHandler for Child {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_prompts()
            .enable_resources()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                self.cli.name.clone(),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.state().min_level = Some(request.level);
        Ok(())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.all_tools();
        let start = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(cursor) => cursor
                .parse::<usize>()
                .ok()
                .filter(|&i| i <= tools.len())
                .ok_or_else(|| ErrorData::invalid_params(format!("bad cursor {cursor:?}"), None))?,
        };
        let size = match self.cli.page_size {
            0 => tools.len(),
            n => n,
        };
        let end = (start + size).min(tools.len());
        let mut result = ListToolsResult::with_all_items(tools[start..end].to_vec());
        if end < tools.len() {
            result.next_cursor = Some(end.to_string());
        }
        Ok(result)
    }

    async fn call_tool(
        &self,
        req: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        macro_rules! parse {
            ($t:ty) => {
                match args::<$t>(&req) {
                    Ok(a) => a,
                    Err(e) => return Ok(e.into()),
                }
            };
        }
        let result = match req.name.as_ref() {
            "echo" => {
                let a = parse!(TextArgs);
                echo_result(a.text.repeat(a.repeat.unwrap_or(1)))
            }
            "add" => {
                let a = parse!(AddArgs);
                text((a.a + a.b).to_string())
            }
            "sleep" => self.sleep(parse!(SleepArgs), &cx).await?,
            "fail" => tool_error(parse!(MessageArgs).message),
            "crash" => {
                let code = parse!(CrashArgs).code.unwrap_or(3);
                tracing::info!("crashing with exit code {code}");
                std::process::exit(code);
            }
            "log" => self.log(parse!(LogArgs), &cx).await?,
            "sample" => self.sample(parse!(PromptArgs), &cx).await?,
            "elicit" => self.elicit(parse!(MessageArgs), &cx).await?,
            "add_tool" => self.change_tools(parse!(NameArgs).name, true, &cx).await?,
            "remove_tool" => self.change_tools(parse!(NameArgs).name, false, &cx).await?,
            "roots" => self.roots(&cx).await?,
            name if self.is_extra_tool(name) => {
                text(Value::Object(req.arguments.clone().unwrap_or_default()).to_string())
            }
            name if self.state().dynamic.contains(name) => echo_result(parse!(TextArgs).text),
            name => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool {name:?}"),
                    None,
                ));
            }
        };
        Ok(result.into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let name = PromptArgument::new("name")
            .with_description("who to greet")
            .with_required(true);
        Ok(ListPromptsResult::with_all_items(vec![Prompt::new(
            "greet",
            Some("Greets someone by name."),
            Some(vec![name]),
        )]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name != "greet" {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt {:?}", request.name),
                None,
            ));
        }
        let name = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| ErrorData::invalid_params("missing argument `name`", None))?;
        let message = PromptMessage::new_text(Role::User, format!("Hello, {name}!"));
        Ok(GetPromptResult::new(vec![message])
            .with_description("A greeting")
            .into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let readme = Resource::new(README_URI, "readme")
            .with_description("What this server is")
            .with_mime_type("text/plain");
        Ok(ListResourcesResult::with_all_items(vec![readme]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourceTemplatesResult, ErrorData> {
        Ok(rmcp::model::ListResourceTemplatesResult::with_all_items(
            vec![rmcp::model::ResourceTemplate::new(NOTE_TEMPLATE, "note")],
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if let Some(name) = request.uri.strip_prefix("child://notes/") {
            let text = format!("note {name}");
            return Ok(
                ReadResourceResult::new(vec![ResourceContents::text(text, &request.uri)]).into(),
            );
        }
        if request.uri != README_URI {
            return Err(ErrorData::resource_not_found(
                format!("no resource {}", request.uri),
                None,
            ));
        }
        Ok(ReadResourceResult::new(vec![ResourceContents::text(README_TEXT, README_URI)]).into())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("MCP_CHILD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("mcp_child=info,rmcp=warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();

    {
        let mut stderr = std::io::stderr().lock();
        for i in 1..=cli.stderr_lines {
            writeln!(stderr, "mcp_child stderr line {i} of {}", cli.stderr_lines)?;
        }
    }
    if cli.garbage {
        // The one deliberate non-protocol write: clients must skip non-JSON lines.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "this line is not JSON-RPC (mcp_child --garbage)")?;
        stdout.flush()?;
    }
    if cli.hang_init {
        tracing::info!("--hang-init: reading stdin without ever answering");
        tokio::io::copy(&mut tokio::io::stdin(), &mut tokio::io::sink()).await?;
        tracing::info!("stdin closed; exiting");
        return Ok(());
    }

    let name = cli.name.clone();
    let running = Child::new(cli)
        .serve(rmcp::transport::stdio_pipes())
        .await?;
    tracing::info!("{name} serving on stdio");
    let reason = running.waiting().await?;
    tracing::info!("{name} stopped: {reason:?}");
    Ok(())
}
