//! The package model: one format-independent `Package` per package root.
//!
//! Each format has its own reader (only the native one so far, `native.rs`); all of them
//! produce this model, so nothing after the loader knows which format a package came in.
//! The loader only reads files: it never starts a process and never writes.

mod aion;
mod claude;
mod codex;
mod foreign;
mod gemini;
pub mod native;
mod read;
pub mod schema;
pub mod skill;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::diagnostic::Diagnostic;

/// Files a package may hand us are capped at this size: manifests, prompt files, rules.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A package may declare at most this many items of one kind.
pub const MAX_ITEMS: usize = 1000;

/// Lower runs first; what a package gets when it says nothing.
pub const DEFAULT_PRIORITY: i64 = 100;

/// Where a package root was found; earlier sources shadow later ones with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `--package` on the command line or `packages` in the config file.
    Explicit,
    /// `.capmux/packages/` in the working directory.
    Project,
    /// The user's data folder (`$XDG_DATA_HOME/capmux/packages`).
    User,
    /// The `plugins/` folder shipped with capmux; these hold what they declare.
    Bundled,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Explicit => "explicit",
            Source::Project => "project",
            Source::User => "user",
            Source::Bundled => "bundled",
        })
    }
}

/// The format a package root was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `package.json` with a `"capmux"` object.
    Native,
    /// `package.json` with an `"aionui"` object (the AionUi plugin RFC), read as native.
    AionuiRfc,
    /// A bare skill: a folder with a `SKILL.md`.
    Skill,
    /// A skill collection: a folder of `<name>/SKILL.md` folders.
    Skills,
    /// A servers config file: `{"mcpServers": {...}}` (Claude Desktop, Cursor, Claude Code,
    /// also flat), or VS Code's `{"servers": {...}}`; also a Codex `config.toml` with
    /// `[mcp_servers]`.
    Servers,
    /// A Claude Code plugin: `.claude-plugin/plugin.json` or its default folders; also one
    /// entry of a Claude Code marketplace.
    ClaudePlugin,
    /// A Gemini CLI extension: `gemini-extension.json`.
    GeminiExtension,
    /// An OpenAI Codex plugin: `.codex-plugin/plugin.json`.
    CodexPlugin,
    /// An AionUi extension: `aion-extension.json`.
    AionExtension,
    /// An npm package with a `bin` and no manifest of ours: a plain MCP server, run with
    /// node as the package's one child server.
    NpmServer,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Native => "native",
            Format::AionuiRfc => "aionui-rfc",
            Format::Skill => "skill",
            Format::Skills => "skills",
            Format::Servers => "servers",
            Format::ClaudePlugin => "claude-plugin",
            Format::GeminiExtension => "gemini-extension",
            Format::CodexPlugin => "codex-plugin",
            Format::AionExtension => "aion-extension",
            Format::NpmServer => "npm-server",
        })
    }
}

/// A permission a package can declare and a user can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Permission {
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
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::FsRead,
        Permission::FsWrite,
        Permission::FsGlobal,
        Permission::NetworkFetch,
        Permission::ShellExecute,
        Permission::McpServer,
    ];

    /// Permissions of the AionUi RFC that concern a desktop UI; accepted and ignored.
    pub const IGNORED: [&'static str; 3] = ["ui:panel", "ui:overlay", "clipboard"];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::FsRead => "fs:read",
            Permission::FsWrite => "fs:write",
            Permission::FsGlobal => "fs:global",
            Permission::NetworkFetch => "network:fetch",
            Permission::ShellExecute => "shell:execute",
            Permission::McpServer => "mcp:server",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of system-prompt text from a package.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemPrompt {
    pub content: String,
    pub priority: i64,
    /// Only for these providers (`claude`, `gemini`, …); `None` means every provider.
    pub providers: Option<Vec<String>>,
    /// The file it came from, relative to the package root; `None` when inline.
    pub file: Option<PathBuf>,
}

/// An argument of a prompt; values arrive as strings (MCP's `prompts/get`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptArgument {
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
}

/// How a prompt's template takes its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Syntax {
    /// `{{name}}` is replaced by the argument `name` (native prompts).
    #[default]
    Placeholders,
    /// A slash command (Claude Code, Codex): `$ARGUMENTS`, `$ARGUMENTS[N]`, `$N` and named
    /// `$name`, from one `arguments` string or from named arguments (see `crate::slash`).
    Slash {
        /// `$1` is the first word; otherwise `$0` is (see `crate::slash::one_based`).
        one_based: bool,
    },
    /// A Gemini CLI command: `{{args}}`.
    Gemini,
}

/// A prompt template; its `syntax` says how arguments fill it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prompt {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub arguments: Vec<PromptArgument>,
    pub template: String,
    pub syntax: Syntax,
    /// Whether the template runs commands (`` !`cmd` ``, `!{cmd}`) or inlines files
    /// (`@{path}`) when it is got; each needs its grant, else it stays text.
    pub inline: bool,
}

/// What runs when a tool is called.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ToolHandler {
    /// An argv run in the package root; arguments as JSON on stdin.
    Command { argv: Vec<String>, timeout_ms: u64 },
}

/// A tool declared by a package.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub input_schema: Arc<Map<String, Value>>,
    pub annotations: Option<Value>,
    pub handler: ToolHandler,
    /// The compiled `input_schema`; arguments are checked against it before anything runs.
    #[serde(skip)]
    pub validator: Arc<jsonschema::Validator>,
}

/// The type of a setting's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingType {
    String,
    Number,
    Boolean,
    Select,
    Multiselect,
}

impl SettingType {
    pub fn as_str(self) -> &'static str {
        match self {
            SettingType::String => "string",
            SettingType::Number => "number",
            SettingType::Boolean => "boolean",
            SettingType::Select => "select",
            SettingType::Multiselect => "multiselect",
        }
    }

    /// Whether `value` is a value of this type (and among `options`, when there are any).
    pub fn accepts(self, value: &Value, options: &[Value]) -> bool {
        let among = |v: &Value| options.is_empty() || options.contains(v);
        match self {
            SettingType::String => value.is_string(),
            SettingType::Number => value.is_number(),
            SettingType::Boolean => value.is_boolean(),
            SettingType::Select => value.is_string() && among(value),
            SettingType::Multiselect => value
                .as_array()
                .is_some_and(|items| items.iter().all(among)),
        }
    }
}

/// A setting a package declares; values come from the user's config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    pub kind: SettingType,
    pub label: Option<String>,
    pub description: Option<String>,
    pub default: Option<Value>,
    pub secret: bool,
    pub required: bool,
    pub options: Vec<Value>,
}

/// How capmux reaches a child MCP server.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Transport {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<String>,
    },
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
    Sse {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

/// A child MCP server a package declares; run by the supervisor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct McpServer {
    pub name: String,
    pub description: Option<String>,
    pub transport: Transport,
    pub lazy: bool,
    /// The idle timeout of its requests; the config's default when `None`.
    pub timeout_ms: Option<u64>,
    /// Only these of its tools are served (Gemini `includeTools`, Codex `enabled_tools`).
    pub include_tools: Option<Vec<String>>,
    /// These of its tools are not served (`excludeTools`, `disabled_tools`).
    pub exclude_tools: Vec<String>,
}

/// The events a hook can attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HookEvent {
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

impl HookEvent {
    pub const ALL: [(&'static str, HookEvent); 9] = [
        ("beforeMessage", HookEvent::BeforeMessage),
        ("afterResponse", HookEvent::AfterResponse),
        ("beforeToolCall", HookEvent::BeforeToolCall),
        ("afterToolCall", HookEvent::AfterToolCall),
        ("beforePromptGet", HookEvent::BeforePromptGet),
        ("afterPromptGet", HookEvent::AfterPromptGet),
        ("beforeResourceRead", HookEvent::BeforeResourceRead),
        ("afterResourceRead", HookEvent::AfterResourceRead),
        ("sessionStart", HookEvent::SessionStart),
    ];
}

/// What a hook runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum HookHandler {
    Command { argv: Vec<String> },
    Http { url: String },
}

/// A hook a package declares; run by the hook chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hook {
    pub event: HookEvent,
    pub matcher: Option<String>,
    pub handler: HookHandler,
    pub timeout_ms: Option<u64>,
    /// `true` lets the call through when the hook fails; `false` blocks it.
    pub fail_open: Option<bool>,
}

/// A capability package, whatever format it came in.
#[derive(Debug, Clone, Serialize)]
pub struct Package {
    /// The npm name, or the folder name when the manifest has none.
    pub id: String,
    pub version: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub source: Source,
    pub root: PathBuf,
    pub format: Format,
    /// Other formats found at the same root and read into this package (see `detect`).
    pub also: Vec<Format>,
    pub priority: i64,
    pub permissions: BTreeSet<Permission>,
    pub settings: BTreeMap<String, Setting>,
    pub system_prompts: Vec<SystemPrompt>,
    /// Its skills, loaded (files listed and digested).
    pub skills: Vec<skill::Skill>,
    pub prompts: Vec<Prompt>,
    pub tools: Vec<Tool>,
    pub mcp_servers: Vec<McpServer>,
    pub hooks: Vec<Hook>,
    /// Variables set for each of its processes (servers, hooks, tools), `${...}` expanded
    /// when they start; one whose expansion fails (an unset setting) is left out.
    pub env: BTreeMap<String, String>,
}

impl Package {
    /// A package with nothing in it yet: the start of a format that carries little.
    pub fn empty(id: String, source: Source, root: &Path, format: Format) -> Package {
        Package {
            id,
            version: None,
            display_name: None,
            description: None,
            category: None,
            source,
            root: root.to_path_buf(),
            format,
            also: Vec::new(),
            priority: DEFAULT_PRIORITY,
            permissions: BTreeSet::new(),
            settings: BTreeMap::new(),
            system_prompts: Vec::new(),
            skills: Vec::new(),
            prompts: Vec::new(),
            tools: Vec::new(),
            mcp_servers: Vec::new(),
            hooks: Vec::new(),
            env: BTreeMap::new(),
        }
    }

    /// The name shown to people: the display name, else the id.
    pub fn title(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.id)
    }
}

/// What loading one root gave: the package, if any survived, and what was wrong.
#[derive(Debug, Default)]
pub struct Loaded {
    pub package: Option<Package>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Where a Claude Code marketplace keeps its list, relative to its root.
pub fn claude_marketplace_file() -> &'static str {
    claude::MARKETPLACE
}

/// Reads `rel` below `workspace` (no `..`, no links out), for `@{path}` in prompts.
pub(crate) fn read_workspace_file(workspace: &Path, rel: &str) -> Result<String, String> {
    read::read_in_root(workspace, rel).map(|(_, text)| text)
}

/// Whether `dir` holds a package in a format this build reads.
pub fn is_package_root(dir: &Path) -> bool {
    detect(dir).is_some()
}

/// The formats of other agents a folder may carry, in the order they are read.
const FOREIGN: [Format; 4] = [
    Format::ClaudePlugin,
    Format::GeminiExtension,
    Format::CodexPlugin,
    Format::AionExtension,
];

fn detect_foreign(dir: &Path, format: Format) -> bool {
    match format {
        Format::ClaudePlugin => claude::detect(dir),
        Format::GeminiExtension => gemini::detect(dir),
        Format::CodexPlugin => codex::detect(dir),
        Format::AionExtension => aion::detect(dir),
        _ => false,
    }
}

/// The format of the package at `dir`, first match wins: a servers config file; a
/// package.json with a `"capmux"` (or `"aionui"`) object; a Claude Code marketplace; the
/// formats of other agents (Claude Code, Gemini CLI, Codex, AionUi; several at one root are
/// read into one package); a package.json without our object (an error); a SKILL.md; a
/// folder of skill folders.
pub fn detect(dir: &Path) -> Option<Format> {
    if native::detect_servers(dir) || codex::detect_config(dir) {
        return Some(Format::Servers);
    }
    let manifest = native::detect(dir).map(|m| native::inspect(&m));
    if manifest == Some(native::Kind::Ours) {
        return Some(Format::Native);
    }
    if claude::detect_marketplace(dir) {
        return Some(Format::ClaudePlugin);
    }
    if let Some(format) = FOREIGN.into_iter().find(|f| detect_foreign(dir, *f)) {
        return Some(format);
    }
    if manifest == Some(native::Kind::Bin) {
        Some(Format::NpmServer)
    } else if manifest.is_some() {
        Some(Format::Native)
    } else if skill::find_entry(dir).is_some() {
        Some(Format::Skill)
    } else if skill::is_collection(dir) {
        Some(Format::Skills)
    } else {
        None
    }
}

/// Loads the packages at `root`: one, or one per plugin of a Claude Code marketplace.
pub fn load_all(root: &Path, source: Source, id: Option<&str>) -> Vec<Loaded> {
    let format = detect(root);
    if format == Some(Format::ClaudePlugin) && claude::detect_marketplace(root) {
        claude::load_marketplace(root, source)
    } else {
        vec![load_as(root, format, source, id)]
    }
}

/// Loads the package at `root`, or says why there is none. `id` names a package whose format
/// carries no name (a skill folder); by default it is the folder's name, and a folder named
/// `skills` is called after its parent (`~/.agents/skills` is `agents-skills`).
pub fn load(root: &Path, source: Source, id: Option<&str>) -> Loaded {
    load_as(root, detect(root), source, id)
}

/// [`load`] of a root whose format is known.
fn load_as(root: &Path, format: Option<Format>, source: Source, id: Option<&str>) -> Loaded {
    match format {
        Some(Format::Native | Format::AionuiRfc) => match native::detect(root) {
            Some(manifest) => {
                let mut loaded = native::load(root, &manifest, source);
                for format in FOREIGN.into_iter().filter(|f| detect_foreign(root, *f)) {
                    loaded.diagnostics.push(
                        Diagnostic::info(
                            root,
                            format!("this folder is also a {format}; the capmux manifest in package.json wins and the {format} files are not read"),
                        )
                        .in_package(loaded.package.as_ref().map_or("", |p| &p.id)),
                    );
                }
                loaded
            }
            None => Loaded::default(),
        },
        Some(Format::Servers) if codex::detect_config(root) => codex::load_config(root, source),
        Some(Format::Servers) => native::load_servers(root, source),
        Some(Format::NpmServer) => native::load_npm_server(root, source),
        Some(format @ (Format::Skill | Format::Skills)) => load_skills(
            root,
            source,
            format,
            id.map_or_else(|| folder_id(root), str::to_owned),
        ),
        Some(_) => load_foreign(root, source, id),
        None => Loaded {
            package: None,
            diagnostics: vec![Diagnostic::error(
                root,
                "no package found: expected a package.json with a \"capmux\" (or \"aionui\") object, a Claude Code plugin, a Gemini CLI, Codex or AionUi extension, a SKILL.md, or folders of SKILL.md",
            )],
        },
    }
}

/// The formats of other agents at `root`, read into one package (see `foreign`); `id`
/// names it when no format does (a Claude Code plugin without manifest).
fn load_foreign(root: &Path, source: Source, id: Option<&str>) -> Loaded {
    let formats: Vec<Format> = FOREIGN
        .into_iter()
        .filter(|f| detect_foreign(root, *f))
        .collect();
    let name_of = |format: Format| match format {
        Format::ClaudePlugin => claude::name(root),
        Format::GeminiExtension => gemini::name(root),
        Format::CodexPlugin => codex::name(root),
        Format::AionExtension => aion::name(root),
        _ => None,
    };
    let names: Vec<(Format, String)> = formats
        .iter()
        .filter_map(|f| Some((*f, name_of(*f)?)))
        .collect();
    let id = match (names.first(), id) {
        (Some((_, n)), _) => n.clone(),
        (None, Some(id)) => id.to_owned(),
        (None, None) => folder_id(root),
    };
    let Some(&first) = formats.first() else {
        return Loaded::default();
    };
    let mut b = foreign::Build::new(root, source, id.clone(), first);
    for (format, name) in &names {
        if *name != id {
            b.info(
                root,
                format!("the {format} calls this package `{name}`; it is served as `{id}`, the {first}'s name"),
            );
        }
    }
    for &format in &formats {
        b.format = format;
        match format {
            Format::ClaudePlugin => claude::read(&mut b),
            Format::GeminiExtension => gemini::read(&mut b),
            Format::CodexPlugin => codex::read(&mut b),
            Format::AionExtension => aion::read(&mut b),
            _ => {}
        }
    }
    b.pkg.also = formats[1..].to_vec();
    b.finish()
}

fn folder_id(root: &Path) -> String {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().trim_start_matches('.').to_owned())
    };
    match name(root) {
        Some(n) if n == "skills" => match root.parent().and_then(name).filter(|p| !p.is_empty()) {
            Some(parent) => format!("{parent}-skills"),
            None => n,
        },
        Some(n) if !n.is_empty() => n,
        _ => "skills".to_owned(),
    }
}

/// A bare skill or a skill collection as a package of skills only.
fn load_skills(root: &Path, source: Source, format: Format, id: String) -> Loaded {
    let mut diagnostics = Vec::new();
    let skills = if format == Format::Skill {
        skill::load(root, &id, &mut diagnostics)
            .into_iter()
            .collect()
    } else {
        skill::load_collection(root, &id, &mut diagnostics)
    };
    let package = Package {
        skills,
        ..Package::empty(id, source, root, format)
    };
    Loaded {
        package: Some(package),
        diagnostics,
    }
}
