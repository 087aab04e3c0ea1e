//! Hooks: policy and glue around every message capmux carries.
//!
//! A hook is attached to an event (`beforeToolCall`, `afterPromptGet`, `sessionStart`, …),
//! filtered by a matcher, and handled by a command, an HTTP endpoint or an in-process Rust
//! handler ([`HookHandler`]). The chain runs the hooks of an event in (package priority,
//! package id, position) order; each sees the previous one's output; a block stops it.
//!
//! The JSON a hook reads and writes uses Claude Code's field names wherever the meaning is
//! the same (`hook_event_name`, `tool_name`, `tool_input`, `tool_response`,
//! `hookSpecificOutput.permissionDecision`, `updatedInput`, `additionalContext`,
//! `decision: "block"` + `reason`) and accepts Gemini CLI's (`decision: "deny"`,
//! `hookSpecificOutput.tool_input`, merged into the input) and the AionUi RFC's
//! (`{message, cancel}`, `{response}`), so hook scripts written for those clients run as
//! they are. A command hook's exit 2 blocks with its stderr as the reason; any other
//! non-zero exit is a non-blocking error.
//!
//! Failure policy: a hook that times out, cannot start or prints output that is not a
//! decision follows its `failOpen` setting; the default is **fail-open** (the call goes on,
//! the failure is logged), as Claude Code treats timed-out hooks. `failOpen: false` blocks
//! the call instead.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

pub use crate::package::HookEvent;
use crate::process::{self, Ended};

/// Default and longest time a hook may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// How much longer than its timeout the chain waits for a hook.
const TIMEOUT_GRACE: Duration = Duration::from_millis(250);

/// The most bytes of a hook's output read.
const OUTPUT_LIMIT: usize = 1024 * 1024;

/// A boxed future, for the handler trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a hook decided; every field is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Block, with this reason.
    pub block: Option<String>,
    /// Replace the input (a tool's arguments, a prompt's arguments, a message, a URI).
    pub input: Option<Value>,
    /// Merge these keys into an object input (Gemini CLI's `hookSpecificOutput.tool_input`).
    pub merge_input: Option<Map<String, Value>>,
    /// Replace the result (a tool result, a prompt result, a resource, a response).
    pub result: Option<Value>,
    /// Text to add for the model.
    pub context: Vec<String>,
}

/// Why a hook gave no decision.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HookError {
    /// Follows the hook's failure policy.
    #[error("timed out after {0} ms")]
    TimedOut(u128),
    /// Follows the hook's failure policy.
    #[error("{0}")]
    Failed(String),
    /// Never blocks: Claude Code's rule for a non-zero exit other than 2.
    #[error("{0}")]
    NonBlocking(String),
}

/// A hook's handler. Library users implement it for in-process hooks.
pub trait HookHandler: Send + Sync {
    /// Decides on the event `input` (the JSON a command hook would read on stdin).
    fn handle<'a>(&'a self, input: &'a Value) -> BoxFuture<'a, Result<Decision, HookError>>;
}

/// Which names a hook applies to.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// No matcher, `""` or `"*"`.
    All,
    /// Only `A-Z a-z 0-9 _ -` and separators: exact names split at `|` or `,`.
    Names(Vec<String>),
    /// Anything else: a regular expression (Rust syntax), matched anywhere in the name, as
    /// Claude Code and Gemini CLI match theirs.
    Pattern(regex::Regex),
}

impl Matcher {
    pub fn parse(matcher: Option<&str>) -> Result<Matcher, String> {
        let text = matcher.map(str::trim).unwrap_or("");
        if text.is_empty() || text == "*" {
            return Ok(Matcher::All);
        }
        let plain = |c: char| c.is_ascii_alphanumeric() || "_-|, ".contains(c);
        if text.chars().all(plain) {
            let names = text
                .split(['|', ','])
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
            return Ok(Matcher::Names(names));
        }
        regex::Regex::new(text)
            .map(Matcher::Pattern)
            .map_err(|err| format!("matcher `{text}` is not a valid pattern: {err}"))
    }

    /// Whether any of `names` (the public name, the name inside its package, the name a
    /// client shows) matches; an event without names matches every matcher.
    pub fn matches(&self, names: &[&str]) -> bool {
        if names.is_empty() {
            return true;
        }
        match self {
            Matcher::All => true,
            Matcher::Names(list) => names.iter().any(|n| list.iter().any(|l| l == n)),
            Matcher::Pattern(re) => names.iter().any(|n| re.is_match(n)),
        }
    }
}

/// One hook in the chain.
pub struct Hook {
    /// The package it belongs to (or the library user's name for it).
    pub package: String,
    pub event: HookEvent,
    pub matcher: Matcher,
    pub handler: Arc<dyn HookHandler>,
    pub timeout: Duration,
    pub fail_open: bool,
}

/// The hooks of every event, in the order they run.
#[derive(Default, Clone)]
pub struct Hooks {
    hooks: Vec<Arc<Hook>>,
}

/// A block, with who blocked.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocked {
    pub package: String,
    pub reason: String,
}

impl Blocked {
    pub fn message(&self) -> String {
        format!(
            "blocked by a hook of package `{}`: {}",
            self.package, self.reason
        )
    }
}

/// What the chain did to an event.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub blocked: Option<Blocked>,
    /// The event after every hook: its input and result fields as the hooks left them.
    pub event: Value,
    /// Context the hooks added, in order.
    pub context: Vec<String>,
    /// How many hooks ran.
    pub ran: usize,
}

/// The field of the event JSON that holds an event's input, and the one for its result.
pub fn fields(event: HookEvent) -> (Option<&'static str>, Option<&'static str>) {
    match event {
        HookEvent::BeforeToolCall => (Some("tool_input"), None),
        HookEvent::AfterToolCall => (None, Some("tool_response")),
        HookEvent::BeforePromptGet => (Some("prompt_arguments"), None),
        HookEvent::AfterPromptGet => (None, Some("prompt_result")),
        HookEvent::BeforeResourceRead => (Some("uri"), None),
        HookEvent::AfterResourceRead => (None, Some("resource_result")),
        HookEvent::BeforeMessage => (Some("prompt"), None),
        HookEvent::AfterResponse => (None, Some("response")),
        HookEvent::SessionStart => (None, None),
    }
}

/// The `hook_event_name` a hook reads: Claude Code's name where it has the event.
pub fn event_name(event: HookEvent) -> &'static str {
    match event {
        HookEvent::BeforeToolCall => "PreToolUse",
        HookEvent::AfterToolCall => "PostToolUse",
        HookEvent::SessionStart => "SessionStart",
        HookEvent::BeforeMessage => "UserPromptSubmit",
        HookEvent::AfterResponse => "Stop",
        other => HookEvent::ALL
            .iter()
            .find(|(_, e)| *e == other)
            .map_or("unknown", |(name, _)| name),
    }
}

/// capmux's own name of an event.
pub fn capmux_name(event: HookEvent) -> &'static str {
    HookEvent::ALL
        .iter()
        .find(|(_, e)| *e == event)
        .map_or("unknown", |(name, _)| name)
}

impl Hooks {
    pub fn new(hooks: Vec<Hook>) -> Hooks {
        Hooks {
            hooks: hooks.into_iter().map(Arc::new).collect(),
        }
    }

    /// Adds a hook after the others (library users' in-process hooks).
    pub fn push(&mut self, hook: Hook) {
        self.hooks.push(Arc::new(hook));
    }

    /// Adds a hook shared with another chain.
    pub fn push_shared(&mut self, hook: Arc<Hook>) {
        self.hooks.push(hook);
    }

    /// Adds every hook of `other` after these.
    pub fn append(&mut self, other: &Hooks) {
        self.hooks.extend(other.hooks.iter().cloned());
    }

    /// Whether any hook listens to `event`.
    pub fn has(&self, event: HookEvent) -> bool {
        self.hooks.iter().any(|h| h.event == event)
    }

    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Runs the hooks of `event` that match `names` over `event_json` (an object with the
    /// common fields already set).
    pub async fn run(&self, event: HookEvent, names: &[&str], mut event_json: Value) -> Outcome {
        let (input_key, result_key) = fields(event);
        let mut outcome = Outcome::default();
        for hook in self
            .hooks
            .iter()
            .filter(|h| h.event == event && h.matcher.matches(names))
        {
            outcome.ran += 1;
            // A command hook stops its own process at `hook.timeout`; the grace lets it say
            // so, and the limit bounds in-process and URL hooks.
            let limit = hook.timeout + TIMEOUT_GRACE;
            let decided = match tokio::time::timeout(limit, hook.handler.handle(&event_json)).await
            {
                Ok(decided) => decided,
                Err(_) => Err(HookError::TimedOut(hook.timeout.as_millis())),
            };
            let decision = match decided {
                Ok(decision) => decision,
                Err(HookError::NonBlocking(message)) => {
                    tracing::warn!(package = %hook.package, event = capmux_name(event), cause = %message, "hook failed; the call goes on");
                    continue;
                }
                Err(err) => {
                    tracing::warn!(package = %hook.package, event = capmux_name(event), cause = %err, fail_open = hook.fail_open, "hook failed");
                    if hook.fail_open {
                        continue;
                    }
                    outcome.blocked = Some(Blocked {
                        package: hook.package.clone(),
                        reason: format!("the hook failed ({err}) and is set to fail closed"),
                    });
                    break;
                }
            };
            if let Some(reason) = decision.block {
                outcome.blocked = Some(Blocked {
                    package: hook.package.clone(),
                    reason,
                });
                break;
            }
            if let (Some(key), Some(map)) = (input_key, event_json.as_object_mut()) {
                if let Some(input) = decision.input {
                    map.insert(key.to_owned(), input);
                }
                if let Some(merge) = decision.merge_input
                    && let Some(Value::Object(current)) = map.get_mut(key)
                {
                    current.extend(merge);
                }
            }
            if let (Some(key), Some(result), Some(map)) =
                (result_key, decision.result, event_json.as_object_mut())
            {
                map.insert(key.to_owned(), result);
            }
            outcome.context.extend(decision.context);
        }
        outcome.event = event_json;
        outcome
    }
}

/// Reads a hook's output as a decision. Empty output decides nothing; output that starts
/// with `{` must be a JSON object; other text is context for the events that take text
/// (`sessionStart`, `beforeMessage`) and ignored elsewhere.
pub fn parse_decision(event: HookEvent, output: &str) -> Result<Decision, String> {
    let text = output.trim();
    if text.is_empty() {
        return Ok(Decision::default());
    }
    if !text.starts_with('{') {
        let takes_text = matches!(event, HookEvent::SessionStart | HookEvent::BeforeMessage);
        return Ok(Decision {
            context: if takes_text {
                vec![text.to_owned()]
            } else {
                Vec::new()
            },
            ..Decision::default()
        });
    }
    let value: Value =
        serde_json::from_str(text).map_err(|err| format!("output is not valid JSON: {err}"))?;
    let Value::Object(out) = value else {
        return Err("output is not a JSON object".into());
    };
    let specific = out.get("hookSpecificOutput").and_then(Value::as_object);
    let field = |key: &str| specific.and_then(|s| s.get(key)).or_else(|| out.get(key));
    let text_of = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let mut decision = Decision::default();

    let reason = field("permissionDecisionReason")
        .or_else(|| out.get("reason"))
        .or_else(|| out.get("stopReason"))
        .map(text_of);
    let blocks = matches!(
        out.get("decision").and_then(Value::as_str),
        Some("block" | "deny")
    ) || field("permissionDecision").and_then(Value::as_str) == Some("deny")
        || out.get("continue") == Some(&Value::Bool(false))
        || out.get("cancel") == Some(&Value::Bool(true));
    if blocks {
        decision.block = Some(reason.unwrap_or_else(|| "no reason given".into()));
        return Ok(decision);
    }

    decision.input = field("updatedInput").cloned();
    if let Some(Value::Object(merge)) = specific.and_then(|s| s.get("tool_input")) {
        decision.merge_input = Some(merge.clone());
    }
    if event == HookEvent::BeforeMessage
        && let Some(message) = out.get("message").filter(|m| m.is_string())
    {
        decision.input = Some(message.clone());
    }
    decision.result = field("updatedToolOutput")
        .or_else(|| field("updatedMCPToolOutput"))
        .or_else(|| field("updatedResult"))
        .or_else(|| field("updatedResponse"))
        .cloned();
    if event == HookEvent::AfterResponse
        && let Some(response) = out.get("response").filter(|r| r.is_string())
    {
        decision.result = Some(response.clone());
    }
    if let Some(context) = field("additionalContext") {
        let context = text_of(context);
        if !context.trim().is_empty() {
            decision.context.push(context);
        }
    }
    Ok(decision)
}

/// A command hook: the event JSON on stdin, a decision on stdout, exit 2 to block.
pub struct CommandHook {
    pub event: HookEvent,
    /// The argv, its `${...}` variables already expanded.
    pub argv: Vec<String>,
    /// The hook's timeout: the process (and its group) is killed when it runs out.
    pub timeout: Duration,
    /// The package root: where the hook runs and relative programs are found.
    pub root: PathBuf,
    /// The whole environment of the process.
    pub env: Vec<(String, String)>,
}

impl HookHandler for CommandHook {
    fn handle<'a>(&'a self, input: &'a Value) -> BoxFuture<'a, Result<Decision, HookError>> {
        Box::pin(async move {
            let argv = &self.argv;
            let program = process::resolve_program(&argv[0], &self.root)
                .ok_or_else(|| HookError::Failed(format!("command `{}` was not found", argv[0])))?;
            let spec = process::Spec {
                program: &program,
                args: &argv[1..],
                cwd: &self.root,
                env: self.env.clone(),
                stdin: serde_json::to_vec(input).unwrap_or_default(),
                timeout: self.timeout,
                output_limit: OUTPUT_LIMIT,
            };
            let output = process::run(spec, CancellationToken::new())
                .await
                .map_err(|err| {
                    HookError::Failed(format!("cannot start `{}`: {err}", program.display()))
                })?;
            let stderr = String::from_utf8_lossy(&output.stderr_tail)
                .trim()
                .to_owned();
            match output.ended {
                Ended::Exited(status) if status.code() == Some(2) => Ok(Decision {
                    block: Some(if stderr.is_empty() {
                        "no reason given".into()
                    } else {
                        stderr
                    }),
                    ..Decision::default()
                }),
                Ended::Exited(status) if !status.success() => Err(HookError::NonBlocking(format!(
                    "exit status {}{}",
                    status
                        .code()
                        .map_or_else(|| "by signal".into(), |c| c.to_string()),
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!(": {stderr}")
                    }
                ))),
                Ended::Exited(_) => {
                    parse_decision(self.event, &String::from_utf8_lossy(&output.stdout))
                        .map_err(HookError::Failed)
                }
                Ended::TimedOut => Err(HookError::TimedOut(self.timeout.as_millis())),
                Ended::Cancelled => Err(HookError::Failed("cancelled".into())),
            }
        })
    }
}

/// An HTTP hook: the event JSON POSTed; a 2xx JSON body is the decision.
pub struct HttpHook {
    pub event: HookEvent,
    pub url: String,
    pub client: reqwest::Client,
}

impl HookHandler for HttpHook {
    fn handle<'a>(&'a self, input: &'a Value) -> BoxFuture<'a, Result<Decision, HookError>> {
        Box::pin(async move {
            let response = self
                .client
                .post(&self.url)
                .json(input)
                .send()
                .await
                .map_err(|err| HookError::Failed(format!("POST {} failed: {err}", self.url)))?;
            let status = response.status();
            let body = response.text().await.map_err(|err| {
                HookError::Failed(format!("reading the answer of {} failed: {err}", self.url))
            })?;
            if !status.is_success() {
                return Err(HookError::NonBlocking(format!(
                    "{} answered {status}",
                    self.url
                )));
            }
            parse_decision(self.event, &body).map_err(HookError::Failed)
        })
    }
}

/// The HTTP client of HTTP hooks, with TLS through rustls and the system's roots.
pub fn http_client() -> Result<reqwest::Client, String> {
    // A second install (another server in this process) is refused, and that is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .build()
        .map_err(|err| format!("cannot build the HTTP client for hooks: {err}"))
}

/// The common fields of every event.
pub fn event_json(event: HookEvent, session_id: &str, cwd: &std::path::Path) -> Value {
    json!({
        "hook_event_name": event_name(event),
        "capmux_event": capmux_name(event),
        "session_id": session_id,
        "cwd": cwd.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_take_names_lists_and_patterns() {
        let names = Matcher::parse(Some("Edit|Write, jira__create")).unwrap();
        assert!(names.matches(&["jira__create"]));
        assert!(!names.matches(&["jira__create_issue"]));
        let pattern = Matcher::parse(Some("jira__.*")).unwrap();
        assert!(pattern.matches(&["x", "jira__search"]));
        assert!(Matcher::parse(Some("*")).unwrap().matches(&["anything"]));
        assert!(Matcher::parse(Some("(")).is_err());
    }

    #[test]
    fn claude_gemini_and_aionui_decisions_are_read() {
        let claude = r#"{"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": "no rm"}}"#;
        assert_eq!(
            parse_decision(HookEvent::BeforeToolCall, claude)
                .unwrap()
                .block
                .as_deref(),
            Some("no rm")
        );
        let gemini = r#"{"decision": "deny", "reason": "not today"}"#;
        assert_eq!(
            parse_decision(HookEvent::BeforeToolCall, gemini)
                .unwrap()
                .block
                .as_deref(),
            Some("not today")
        );
        let merge = r#"{"hookSpecificOutput": {"tool_input": {"a": 1}}}"#;
        assert_eq!(
            parse_decision(HookEvent::BeforeToolCall, merge)
                .unwrap()
                .merge_input,
            Some(serde_json::from_str(r#"{"a": 1}"#).unwrap())
        );
        let rfc = r#"{"message": "rewritten", "cancel": false}"#;
        assert_eq!(
            parse_decision(HookEvent::BeforeMessage, rfc).unwrap().input,
            Some(json!("rewritten"))
        );
        assert_eq!(
            parse_decision(HookEvent::SessionStart, "be careful")
                .unwrap()
                .context,
            ["be careful"]
        );
        assert!(parse_decision(HookEvent::AfterToolCall, "{not json").is_err());
    }
}
