//! The JSON Schema of the native manifest (the `"capmux"` object of package.json), for
//! editors and for `capmux schema`.
//!
//! These types exist only to describe the format; the loader reads manifests field by field
//! in `native.rs` so that one bad field is one diagnostic. A test validates the bundled
//! plugins and the loader's full fixture against this schema, and checks the committed
//! `schema/capmux-manifest.schema.json` is what this module generates, so the description
//! and the reader cannot drift apart unnoticed.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde_json::Value;

/// The `"capmux"` object of a package's package.json.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "capmux package manifest")]
pub struct Manifest {
    /// The manifest format version; this capmux reads 1.
    #[schemars(range(min = 1, max = 1))]
    pub manifest_version: Option<u32>,
    /// The AionUi RFC's version of its plugin format, e.g. "1.0".
    pub plugin_version: Option<String>,
    /// The name shown to people and the heading of the package's system prompt.
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub category: Option<Category>,
    /// An icon file, relative to the package root.
    pub icon: Option<String>,
    /// The oldest capmux version that may load this package, like "0.1.0".
    #[schemars(regex(pattern = r"^v?\d+(\.\d+){0,2}([-+].*)?$"))]
    pub min_host_version: Option<String>,
    /// Order among packages, lower first; decides who keeps a contested name. Default 100.
    pub priority: Option<i64>,
    /// What the package needs; the user grants it.
    pub permissions: Option<Vec<PermissionName>>,
    /// Parts of the merged system prompt.
    pub system_prompts: Option<Vec<SystemPrompt>>,
    /// A folder of `<name>/SKILL.md` skills, or a list of skills.
    pub skills: Option<Skills>,
    /// Prompt templates, served as MCP prompts.
    #[schemars(length(max = 1000))]
    pub prompts: Option<Vec<Prompt>>,
    /// Command tools, served as MCP tools.
    #[schemars(length(max = 1000))]
    pub tools: Option<Vec<Tool>>,
    /// Child MCP servers whose tools, prompts and resources capmux serves too.
    pub mcp_servers: Option<Vec<McpServer>>,
    /// Hooks run around messages and calls.
    pub hooks: Option<Vec<Hook>>,
    /// Settings the user gives values to, keyed by setting name.
    pub settings: Option<BTreeMap<String, Setting>>,
    /// AionUi RFC assistants; read but not served over MCP.
    pub agents: Option<Value>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Productivity,
    AiTools,
    CodeAnalysis,
    Document,
    Integration,
    Other,
}

#[derive(JsonSchema)]
pub enum PermissionName {
    #[serde(rename = "fs:read")]
    FsRead,
    #[serde(rename = "fs:write")]
    FsWrite,
    #[serde(rename = "fs:global")]
    FsGlobal,
    #[serde(rename = "network:fetch")]
    NetworkFetch,
    #[serde(rename = "shell:execute")]
    ShellExecute,
    #[serde(rename = "mcp:server")]
    McpServer,
    /// Accepted and ignored: concerns a desktop UI.
    #[serde(rename = "ui:panel")]
    UiPanel,
    /// Accepted and ignored: concerns a desktop UI.
    #[serde(rename = "ui:overlay")]
    UiOverlay,
    /// Accepted and ignored: concerns a desktop UI.
    #[serde(rename = "clipboard")]
    Clipboard,
}

/// One part of the system prompt: `content` or `file`, not both.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemPrompt {
    pub content: Option<String>,
    /// A Markdown file, relative to the package root.
    pub file: Option<String>,
    /// Lower first; default 100.
    pub priority: Option<i64>,
    /// Only for these providers (claude, gemini, codex, …).
    pub providers: Option<Vec<String>>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
pub enum Skills {
    /// A folder of `<name>/SKILL.md`, relative to the package root.
    Folder(String),
    List(Vec<SkillRef>),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillRef {
    pub name: String,
    pub description: Option<String>,
    pub path: Option<String>,
    pub body: Option<String>,
    pub resources: Option<Vec<String>>,
}

/// A prompt template; `{{name}}` is replaced by the argument `name`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// A Markdown file, relative to the package root.
    pub file: Option<String>,
    /// The template inline, instead of `file`.
    pub content: Option<String>,
    pub arguments: Option<Vec<PromptArgument>>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptArgument {
    pub name: String,
    pub description: Option<String>,
    pub required: Option<bool>,
}

/// A command tool: `command` runs in the package root with the arguments as JSON on stdin.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tool {
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// A JSON Schema with "type": "object".
    pub input_schema: Option<Value>,
    /// The argv to run, e.g. ["python3", "tools/x.py"].
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    /// Default 30000, at most 600000.
    #[schemars(range(min = 1, max = 600_000))]
    pub timeout_ms: Option<u64>,
    /// MCP tool annotations (readOnlyHint, destructiveHint, …).
    pub annotations: Option<Value>,
    pub providers: Option<Vec<String>>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServer {
    pub name: String,
    pub description: Option<String>,
    pub transport: Transport,
    /// Start the server on first use instead of at start-up.
    pub lazy: Option<bool>,
    /// The idle timeout of its requests in milliseconds (reset by progress).
    #[schemars(range(min = 1))]
    pub timeout: Option<u64>,
    pub tools: Option<Value>,
    pub env: Option<BTreeMap<String, String>>,
    pub bundled: Option<bool>,
}

#[derive(JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transport {
    Stdio {
        command: String,
        args: Option<Vec<String>>,
        env: Option<BTreeMap<String, String>>,
        cwd: Option<String>,
    },
    #[serde(alias = "streamable_http")]
    Http {
        url: String,
        headers: Option<BTreeMap<String, String>>,
    },
    Sse {
        url: String,
        headers: Option<BTreeMap<String, String>>,
    },
}

/// A hook: `command` (argv) or `url`, not both.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hook {
    pub event: HookEventName,
    /// Which names the hook applies to.
    pub matcher: Option<String>,
    pub command: Option<Vec<String>>,
    pub url: Option<String>,
    pub timeout_ms: Option<u64>,
    /// Let the call through when the hook fails.
    pub fail_open: Option<bool>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HookEventName {
    BeforeMessage,
    AfterResponse,
    BeforeToolCall,
    AfterToolCall,
    BeforePromptGet,
    AfterPromptGet,
    BeforeResourceRead,
    AfterResourceRead,
    SessionStart,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    #[serde(rename = "type")]
    pub kind: Option<SettingKind>,
    pub label: Option<String>,
    pub description: Option<String>,
    pub default: Option<Value>,
    /// Never printed or logged by capmux.
    pub secret: Option<bool>,
    pub required: Option<bool>,
    pub options: Option<Vec<Value>>,
    pub validation: Option<Value>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SettingKind {
    String,
    Number,
    Boolean,
    Select,
    Multiselect,
}

/// The schema as pretty JSON, as committed in `schema/capmux-manifest.schema.json`.
pub fn manifest_schema() -> String {
    let schema = schemars::schema_for!(Manifest);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
