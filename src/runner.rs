//! Command tools: a package's argv run with the call's arguments as JSON on stdin.
//!
//! What a call goes through, in order: the package must declare and hold `shell:execute`;
//! its required settings must be set; the arguments must match the tool's `inputSchema`.
//! Only then does a process start, through `process` (its own process group, an
//! allow-listed environment, bounded output, the group killed when the call ends).
//!
//! Stdout is the result: a JSON object with a boolean `success` is the AionUi RFC's
//! ToolResult (`data`, `error`, `display`); anything else is text. A non-zero exit or
//! `success: false` is a tool error (`isError`) that says why.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::expand;
use crate::package::{Permission, Tool, ToolHandler};
use crate::pool::Active;

use crate::process::{self, Ended, STDERR_TAIL};

/// What every call shares: where the user works and how much output to pass on.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The user's working directory: `${workspace}` and the `cwd` of hook events.
    pub workspace: PathBuf,
    pub output_limit: usize,
    /// Where to tell the user to write grants and settings.
    pub config_location: String,
}

impl Runner {
    pub fn new(config: &Config, workspace: PathBuf) -> Self {
        Runner {
            workspace,
            output_limit: config.tool_output_limit(),
            config_location: config.location(),
        }
    }

    /// Runs `tool` of `active` as the public tool `public`.
    pub async fn call(
        &self,
        active: &Active,
        tool: &Tool,
        public: &str,
        arguments: Option<Map<String, Value>>,
        cancel: CancellationToken,
    ) -> CallToolResult {
        match self.try_call(active, tool, public, arguments, cancel).await {
            Ok(result) => result,
            Err(message) => error_result(message),
        }
    }

    async fn try_call(
        &self,
        active: &Active,
        tool: &Tool,
        public: &str,
        arguments: Option<Map<String, Value>>,
        cancel: CancellationToken,
    ) -> Result<CallToolResult, String> {
        let package = &active.package;
        let ToolHandler::Command { argv, timeout_ms } = &tool.handler;
        self.check_grant(active, public)?;
        self.check_settings(active)?;

        let arguments = Value::Object(arguments.unwrap_or_default());
        let problems: Vec<String> = tool
            .validator
            .iter_errors(&arguments)
            .take(5)
            .map(|err| {
                let at = err.instance_path().to_string();
                if at.is_empty() {
                    err.to_string()
                } else {
                    format!(
                        "argument `{}`: {err}",
                        at.trim_start_matches('/').replace('/', ".")
                    )
                }
            })
            .collect();
        if !problems.is_empty() {
            return Err(format!(
                "invalid arguments for tool `{public}`: {}",
                problems.join("; ")
            ));
        }

        let argv = expand::expand_all(argv, &active.vars(&self.workspace))
            .map_err(|err| format!("tool `{public}` cannot run: {err}"))?;
        let program = process::resolve_program(&argv[0], &package.root).ok_or_else(|| {
            format!(
                "tool `{public}` cannot run: command `{}` was not found",
                argv[0]
            )
        })?;

        tokio::fs::create_dir_all(&active.data_dir)
            .await
            .map_err(|err| {
                format!(
                    "tool `{public}` cannot run: cannot create its data folder {}: {err}",
                    active.data_dir.display()
                )
            })?;
        let timeout = Duration::from_millis(*timeout_ms);
        let spec = process::Spec {
            program: &program,
            args: &argv[1..],
            cwd: &package.root,
            env: self.env(active, Some(&tool.name)),
            stdin: serde_json::to_vec(&arguments).unwrap_or_default(),
            timeout,
            output_limit: self.output_limit,
        };
        let output = process::run(spec, cancel).await.map_err(|err| {
            format!(
                "tool `{public}` cannot start `{}`: {err}",
                program.display()
            )
        })?;
        let limit = self.output_limit;
        let (out, out_total, err_tail) = (&output.stdout, output.stdout_total, &output.stderr_tail);
        match output.ended {
            Ended::TimedOut => Err(format!(
                "tool `{public}` timed out after {} ms and was stopped",
                timeout.as_millis()
            )),
            Ended::Cancelled => Err(format!("tool `{public}` was cancelled")),
            Ended::Exited(status) => Ok(to_result(public, status, out, out_total, limit, err_tail)),
        }
    }

    fn check_grant(&self, active: &Active, public: &str) -> Result<(), String> {
        let permission = Permission::ShellExecute;
        let id = &active.package.id;
        if !active.package.permissions.contains(&permission) {
            return Err(format!(
                "tool `{public}` is refused: package `{id}` does not declare the `{permission}` permission its command tools need"
            ));
        }
        if !active.holds(permission) {
            return Err(format!(
                "tool `{public}` is refused: package `{id}` has not been granted `{permission}`; grant it by adding grants = [\"{permission}\"] under [packages.\"{id}\"] in {}",
                self.config_location
            ));
        }
        Ok(())
    }

    fn check_settings(&self, active: &Active) -> Result<(), String> {
        let id = &active.package.id;
        let missing: Vec<&str> = active
            .package
            .settings
            .iter()
            .filter(|(key, s)| s.required && !active.settings.get(*key).is_some_and(is_set))
            .map(|(key, _)| key.as_str())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let (s, them) = if missing.len() == 1 {
            ("", "it")
        } else {
            ("s", "them")
        };
        Err(format!(
            "package `{id}` needs the setting{s} {} first: add {them} under [packages.\"{id}\".settings] in {}",
            missing
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            self.config_location
        ))
    }

    /// The environment of a call of `tool` (or of a hook, without a tool): the allow-listed
    /// host variables and the `CAPMUX_*` ones.
    pub fn env(&self, active: &Active, tool: Option<&str>) -> Vec<(String, String)> {
        let mut env = process::host_env();
        env.extend([
            (
                "CAPMUX_PLUGIN_ROOT".to_owned(),
                active.package.root.display().to_string(),
            ),
            (
                "CAPMUX_PLUGIN_DATA".to_owned(),
                active.data_dir.display().to_string(),
            ),
            (
                "CAPMUX_WORKSPACE".to_owned(),
                self.workspace.display().to_string(),
            ),
            ("CAPMUX_PACKAGE".to_owned(), active.package.id.clone()),
            (
                "CAPMUX_SETTINGS".to_owned(),
                Value::Object(active.settings.clone()).to_string(),
            ),
        ]);
        if let Some(tool) = tool {
            env.push(("CAPMUX_TOOL".to_owned(), tool.to_owned()));
        }
        env.extend(active.env(&self.workspace));
        for (key, value) in &active.settings {
            let name = crate::expand::env_name(key);
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            env.push((format!("CAPMUX_SETTING_{name}"), value));
        }
        env
    }
}

fn is_set(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn error_result(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// Maps what a finished process printed to an MCP result.
fn to_result(
    public: &str,
    status: ExitStatus,
    out: &[u8],
    total: usize,
    limit: usize,
    err_tail: &[u8],
) -> CallToolResult {
    let text = String::from_utf8_lossy(out);
    let truncated = total > out.len();
    let parsed: Option<Map<String, Value>> = if truncated {
        None
    } else {
        serde_json::from_str::<Value>(text.trim())
            .ok()
            .and_then(|v| match v {
                Value::Object(map) if map.get("success").is_some_and(Value::is_boolean) => {
                    Some(map)
                }
                _ => None,
            })
    };
    let stderr = String::from_utf8_lossy(err_tail).trim().to_owned();

    if !status.success() {
        let how = match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => "failed".to_owned(),
        };
        let reason = parsed
            .as_ref()
            .and_then(|m| m.get("error"))
            .map(value_text)
            .filter(|s| !s.is_empty())
            .or_else(|| (!stderr.is_empty()).then(|| stderr.clone()))
            .unwrap_or_else(|| text.trim().chars().take(STDERR_TAIL).collect());
        return error_result(format!("tool `{public}` failed ({how}): {reason}"));
    }

    let Some(result) = parsed else {
        let mut text = text.into_owned();
        if truncated {
            text.push_str(&format!(
                "\n[output truncated: {total} bytes, showing the first {limit}]"
            ));
        }
        return CallToolResult::success(vec![ContentBlock::text(text)]);
    };
    if result.get("success") == Some(&Value::Bool(false)) {
        let reason = result
            .get("error")
            .map(value_text)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "the tool reported failure without a reason".into());
        return error_result(reason);
    }
    let data = result.get("data").cloned();
    let content = match result.get("display") {
        Some(Value::Object(display)) => display_content(display),
        _ => data.as_ref().map(value_text).map(ContentBlock::text),
    };
    let mut out = CallToolResult::success(content.into_iter().collect());
    if let Some(data @ Value::Object(_)) = data {
        out.structured_content = Some(data);
    }
    out
}

/// The RFC's `display` as MCP content: images become image content, the rest text.
fn display_content(display: &Map<String, Value>) -> Option<ContentBlock> {
    let content = display.get("content")?;
    let kind = display
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("text");
    if kind == "image"
        && let Some(data_url) = content.as_str()
        && let Some((mime, data)) = data_url
            .strip_prefix("data:")
            .and_then(|rest| rest.split_once(";base64,"))
    {
        return Some(ContentBlock::image(data, mime));
    }
    if kind == "json" && !content.is_string() {
        return Some(ContentBlock::text(
            serde_json::to_string_pretty(content).unwrap_or_default(),
        ));
    }
    Some(ContentBlock::text(value_text(content)))
}

/// A JSON value as text: strings as they are, the rest as JSON.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
