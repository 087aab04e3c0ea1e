//! What the formats of other agents share: one package built from every format found at a
//! root, the hooks file Claude Code, Codex and Gemini CLI write, slash-command and subagent
//! Markdown, context files, and the rule that one file is read once.
//!
//! The multi-format rule: the formats at a root are read in the order Claude Code, Gemini
//! CLI, Codex, AionUi into one package. The first format found gives the id, version and
//! description. A file or folder two formats name (`skills/`, `hooks/hooks.json`) is read
//! once. When two formats give an item of the same name, the first keeps it and the later
//! one is an info diagnostic, so nothing is served twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::read::{Reader, kind, read_text};
use super::skill::{self, Skill};
use super::{
    Format, Hook, HookEvent, HookHandler, Loaded, MAX_ITEMS, McpServer, Package, Permission,
    Prompt, PromptArgument, Source, Syntax, SystemPrompt,
};
use crate::diagnostic::{Diagnostic, Severity};
use crate::names;

/// A package being read from one or more formats.
pub(crate) struct Build<'a> {
    pub r: Reader<'a>,
    pub pkg: Package,
    /// The format whose files are being read.
    pub format: Format,
    /// Files and folders already read, canonical.
    seen: BTreeSet<PathBuf>,
}

impl<'a> Build<'a> {
    pub fn new(root: &'a Path, source: Source, id: String, format: Format) -> Build<'a> {
        Build {
            r: Reader {
                root,
                manifest: root.to_path_buf(),
                package: id.clone(),
                key: "",
                on_path: Default::default(),
                diagnostics: Vec::new(),
            },
            pkg: Package::empty(id, source, root, format),
            format,
            seen: BTreeSet::new(),
        }
    }

    /// Diagnostics from here on name `file`.
    pub fn at(&mut self, file: &Path) {
        self.r.manifest = file.to_path_buf();
    }

    /// Whether `path` is read for the first time; a second format naming it adds nothing.
    pub fn first_time(&mut self, path: &Path) -> bool {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        self.seen.insert(canonical)
    }

    pub fn info(&mut self, file: &Path, message: impl Into<String>) {
        self.r.push(Severity::Info, file, message.into());
    }

    pub fn warn(&mut self, file: &Path, message: impl Into<String>) {
        self.r.push(Severity::Warning, file, message.into());
    }

    pub fn error(&mut self, file: &Path, message: impl Into<String>) {
        self.r.push(Severity::Error, file, message.into());
    }

    /// The path of `file` relative to the package root, for messages.
    pub fn rel(&self, file: &Path) -> String {
        file.strip_prefix(self.r.root)
            .unwrap_or(file)
            .display()
            .to_string()
    }

    /// The JSON object in `file`, or a diagnostic.
    pub fn json(&mut self, file: &Path) -> Option<Map<String, Value>> {
        self.at(file);
        let text = match read_text(file) {
            Ok(text) => text,
            Err(err) => {
                self.error(file, err);
                return None;
            }
        };
        match serde_json::from_str(&text) {
            Ok(Value::Object(obj)) => Some(obj),
            Ok(other) => {
                self.error(
                    file,
                    format!("expected a JSON object, found {}", kind(&other)),
                );
                None
            }
            Err(err) => {
                let line = err.line();
                self.r.diagnostics.push(
                    Diagnostic::error(file, format!("invalid JSON: {err}"))
                        .at_line(line)
                        .in_package(self.pkg.id.clone()),
                );
                None
            }
        }
    }

    /// The JSON manifest `rel` of the package, read once, with its path.
    pub fn manifest(&mut self, rel: &str) -> Option<(PathBuf, Map<String, Value>)> {
        let file = self.r.root.join(rel);
        self.first_time(&file);
        let m = self.json(&file)?;
        Some((file, m))
    }

    /// The frontmatter (empty when there is none) and body of a Markdown file.
    pub fn markdown(&mut self, file: &Path) -> Option<(Map<String, Value>, String)> {
        let text = match read_text(file) {
            Ok(text) => text,
            Err(err) => {
                self.error(file, err);
                return None;
            }
        };
        if !text.starts_with("---") {
            return Some((Map::new(), text.trim().to_owned()));
        }
        match skill::parse(&text) {
            Ok(parsed) => {
                if let Some(err) = parsed.lenient {
                    // Claude Code reads such frontmatter (`argument-hint: [a] [b]`) too.
                    let mut d = Diagnostic::info(
                        file,
                        format!(
                            "frontmatter is not strict YAML ({}); it was read line by line",
                            err.reason
                        ),
                    )
                    .in_package(self.pkg.id.clone());
                    d.line = err.line;
                    self.r.diagnostics.push(d);
                }
                Some((parsed.frontmatter, parsed.body))
            }
            Err(err) => {
                self.error(file, format!("not loaded: {err}"));
                None
            }
        }
    }

    /// A prompt, unless another format already gave one of that name.
    pub fn add_prompt(&mut self, file: &Path, prompt: Prompt) {
        if self.pkg.prompts.len() >= MAX_ITEMS {
            self.error(
                file,
                format!(
                    "more than {MAX_ITEMS} prompts; `{}` is not loaded",
                    prompt.name
                ),
            );
        } else if self.pkg.prompts.iter().any(|p| p.name == prompt.name) {
            self.already_given(file, "prompt", &prompt.name, "loaded");
        } else {
            self.pkg.prompts.push(prompt);
        }
    }

    /// The info diagnostic of the multi-format rule: an earlier format gave `name` already.
    fn already_given(&mut self, file: &Path, what: &str, name: &str, done: &str) {
        let rel = self.rel(file);
        self.info(
            file,
            format!(
                "`{rel}` ({}): a {what} `{name}` is already given by this package; this one is not {done} twice",
                self.format
            ),
        );
    }

    /// Servers, each unless one of that name is already there.
    pub fn add_servers(&mut self, file: &Path, servers: Vec<McpServer>) {
        for server in servers {
            if self.pkg.mcp_servers.iter().any(|s| s.name == server.name) {
                self.already_given(file, "server", &server.name, "started");
            } else {
                self.pkg.mcp_servers.push(server);
            }
        }
    }

    /// Skills, each unless its folder was read already or its name is taken.
    pub fn add_skills(&mut self, skills: Vec<Skill>) {
        for skill in skills {
            let entry = skill.dir.join(skill::SKILL_MD);
            if self
                .pkg
                .skills
                .iter()
                .any(|s| s.dir == skill.dir && s.name == skill.name)
            {
                continue;
            }
            if self.pkg.skills.iter().any(|s| s.name == skill.name) {
                self.info(
                    &entry,
                    format!(
                        "a skill `{}` is already given by this package; this one is not loaded",
                        skill.name
                    ),
                );
                continue;
            }
            self.pkg.skills.push(skill);
        }
    }

    /// The skills of a folder holding skill folders, or of one skill folder.
    pub fn skills_at(&mut self, dir: &Path) {
        if !self.first_time(dir) {
            return;
        }
        let id = self.pkg.id.clone();
        let skills = if skill::find_entry(dir).is_some() {
            skill::load(dir, &id, &mut self.r.diagnostics)
                .into_iter()
                .collect()
        } else {
            skill::load_collection(dir, &id, &mut self.r.diagnostics)
        };
        self.add_skills(skills);
    }

    /// A context file as a part of the system prompt; `imports` resolves Gemini CLI's
    /// `@path` lines.
    pub fn context_file(&mut self, file: &Path, imports: bool) {
        if !self.first_time(file) {
            return;
        }
        let mut visited = BTreeSet::new();
        let root = self
            .r
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.r.root.to_path_buf());
        let Some(content) = self.context_text(file, imports, &root, 0, &mut visited) else {
            return;
        };
        if content.trim().is_empty() {
            self.info(file, "empty; nothing added to the system prompt");
            return;
        }
        self.pkg.system_prompts.push(SystemPrompt {
            content,
            priority: super::DEFAULT_PRIORITY,
            providers: None,
            file: Some(PathBuf::from(self.rel(file))),
        });
    }

    fn context_text(
        &mut self,
        file: &Path,
        imports: bool,
        root: &Path,
        depth: usize,
        visited: &mut BTreeSet<PathBuf>,
    ) -> Option<String> {
        let text = match read_text(file) {
            Ok(text) => text,
            Err(err) => {
                self.error(file, err);
                return None;
            }
        };
        visited.insert(file.canonicalize().unwrap_or_else(|_| file.to_path_buf()));
        if !imports {
            return Some(text.trim().to_owned());
        }
        let mut out = String::new();
        for line in text.lines() {
            let import = line
                .trim()
                .strip_prefix('@')
                .filter(|p| !p.is_empty() && !p.contains(char::is_whitespace));
            let Some(rel) = import else {
                out.push_str(line);
                out.push('\n');
                continue;
            };
            let base = file.parent().unwrap_or(self.r.root);
            let wanted = base.join(rel);
            let inside = wanted
                .canonicalize()
                .ok()
                .filter(|p| p.is_file() && p.starts_with(root));
            match inside {
                Some(path) if visited.contains(&path) => {
                    self.warn(
                        file,
                        format!("`@{rel}` imports a file already imported; left as text"),
                    );
                    out.push_str(line);
                    out.push('\n');
                }
                Some(_) if depth >= 5 => {
                    self.warn(
                        file,
                        format!("`@{rel}`: imports nest deeper than 5; left as text"),
                    );
                    out.push_str(line);
                    out.push('\n');
                }
                Some(path) => {
                    if let Some(inner) = self.context_text(&path, true, root, depth + 1, visited) {
                        out.push_str(&inner);
                        out.push('\n');
                    }
                }
                None => {
                    self.warn(
                        file,
                        format!("`@{rel}` is not a file inside the package; left as text"),
                    );
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        Some(out.trim().to_owned())
    }

    /// Files below `dir` ending in `.ext`, sorted, links and hidden entries left out.
    pub fn files_below(&mut self, dir: &Path, ext: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                if kind.is_symlink() {
                    self.warn(&entry.path(), "a link; links in a package are not followed");
                } else if kind.is_dir() {
                    stack.push(entry.path());
                } else if kind.is_file() && name.ends_with(&format!(".{ext}")) {
                    out.push(entry.path());
                }
            }
        }
        out.sort();
        if out.len() > MAX_ITEMS {
            self.error(
                dir,
                format!("{} files; at most {MAX_ITEMS} are read", out.len()),
            );
            out.truncate(MAX_ITEMS);
        }
        out
    }

    /// A Markdown slash command (Claude Code `commands/*.md`, Codex `prompts/*.md`) as a
    /// prompt named `name`.
    pub fn slash_command(&mut self, file: &Path, name: &str, one_based: Option<bool>) {
        if !self.first_time(file) {
            return;
        }
        let Some((fm, body)) = self.markdown(file) else {
            return;
        };
        let Some(name) = self.item_name(file, name, "command") else {
            return;
        };
        let text = |key: &str| fm.get(key).and_then(Value::as_str).map(str::to_owned);
        let description = text("description").or_else(|| first_line(&body));
        let hint = fm.get("argument-hint").map(hint_text);
        let named: Vec<String> = match fm.get("arguments") {
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let root = self.r.root.display().to_string();
        let template = body.replace("${CLAUDE_PLUGIN_ROOT}", &root);
        let one_based = one_based.unwrap_or_else(|| crate::slash::one_based(&template));
        let arguments = if named.is_empty() {
            let first = if one_based {
                "`$1`, `$2`"
            } else {
                "`$0`, `$1`"
            };
            vec![PromptArgument {
                name: crate::slash::ARGUMENTS.into(),
                description: Some(hint.unwrap_or_else(|| {
                    format!("the text after the command, as `$ARGUMENTS`; its words are {first}, …")
                })),
                required: false,
            }]
        } else {
            named
                .iter()
                .map(|n| PromptArgument {
                    name: n.clone(),
                    description: hint.clone(),
                    required: false,
                })
                .collect()
        };
        let ignored: Vec<&str> = fm
            .keys()
            .map(String::as_str)
            .filter(|k| {
                [
                    "allowed-tools",
                    "disallowed-tools",
                    "model",
                    "effort",
                    "context",
                    "agent",
                    "hooks",
                    "shell",
                    "paths",
                ]
                .contains(k)
            })
            .collect();
        if !ignored.is_empty() {
            self.info(
                file,
                format!(
                    "{} set how the agent runs the command; an MCP prompt cannot carry them, so they are ignored",
                    ignored
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        let inline = crate::slash::has_inline_shell(&template);
        if inline {
            self.note_inline(file);
        }
        self.add_prompt(
            file,
            Prompt {
                name,
                title: None,
                description,
                arguments,
                template,
                syntax: Syntax::Slash { one_based },
                inline,
            },
        );
    }

    /// A subagent's Markdown as a prompt whose text is its system prompt.
    pub fn agent(&mut self, file: &Path) {
        if !self.first_time(file) {
            return;
        }
        let Some((fm, body)) = self.markdown(file) else {
            return;
        };
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let declared = fm
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&stem)
            .to_owned();
        let Some(name) = self.item_name(file, &declared, "agent") else {
            return;
        };
        let description = fm.get("description").and_then(Value::as_str).map(|d| {
            format!(
                "Subagent: {}",
                d.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        });
        let root = self.r.root.display().to_string();
        self.add_prompt(
            file,
            Prompt {
                name,
                title: None,
                description,
                arguments: Vec::new(),
                template: body.replace("${CLAUDE_PLUGIN_ROOT}", &root),
                syntax: Syntax::Placeholders,
                inline: false,
            },
        );
    }

    /// An item name made valid; a change is a warning, an unusable name an error.
    pub fn item_name(&mut self, file: &Path, raw: &str, what: &str) -> Option<String> {
        match names::sanitize_item(raw) {
            Ok((name, false)) => Some(name),
            Ok((name, true)) => {
                self.warn(
                    file,
                    format!(
                        "{what} name `{raw}` may only use A-Z a-z 0-9 _ -; it is served as `{name}`"
                    ),
                );
                Some(name)
            }
            Err(err) => {
                self.error(file, format!("{what} name cannot be made valid: {err}"));
                None
            }
        }
    }

    /// The package asks for `shell:execute` for inline commands; says what happens without.
    pub fn note_inline(&mut self, file: &Path) {
        self.pkg.permissions.insert(Permission::ShellExecute);
        self.info(
            file,
            "runs inline commands (or inlines files) when the prompt is got, only if the package is granted `shell:execute` (`fs:read` for files); otherwise they stay text",
        );
    }

    /// A hooks config (`{"hooks": {Event: [{matcher, hooks: [handler]}]}}`, or the events
    /// object itself), from `file`. Claude Code's and Codex's event names take timeouts in
    /// seconds, Gemini CLI's in milliseconds.
    pub fn hooks(&mut self, file: &Path, config: &Map<String, Value>) {
        let events = match config.get("hooks") {
            Some(Value::Object(events)) => events,
            Some(other) => {
                self.error(
                    file,
                    format!("`hooks`: expected an object, found {}", kind(other)),
                );
                return;
            }
            None => config,
        };
        for (event_name, definitions) in events {
            let Some((event, dialect)) = map_event(event_name, self.format) else {
                let known = CLAUDE_EVENTS
                    .iter()
                    .chain(GEMINI_EVENTS)
                    .any(|(n, _)| n == event_name)
                    || UNSEEN_EVENTS.contains(&event_name.as_str());
                if known {
                    self.info(
                        file,
                        format!("hook event `{event_name}` happens inside the agent, where an MCP server never sees it; its hooks are not run"),
                    );
                } else if event_name != "description" {
                    self.warn(file, format!("unknown hook event `{event_name}`; not run"));
                }
                continue;
            };
            let Value::Array(definitions) = definitions else {
                self.error(
                    file,
                    format!(
                        "hooks.{event_name}: expected an array, found {}",
                        kind(definitions)
                    ),
                );
                continue;
            };
            for (i, def) in definitions.iter().enumerate() {
                let at = format!("hooks.{event_name}[{i}]");
                let Value::Object(def) = def else {
                    self.error(
                        file,
                        format!("{at}: expected an object, found {}", kind(def)),
                    );
                    continue;
                };
                let matcher = match def.get("matcher") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(m)) => Some(m.clone()),
                    Some(other) => {
                        self.error(
                            file,
                            format!("{at}.matcher: expected a string, found {}", kind(other)),
                        );
                        continue;
                    }
                };
                let Some(Value::Array(handlers)) = def.get("hooks") else {
                    self.error(
                        file,
                        format!("{at}: `hooks` (an array of handlers) is required"),
                    );
                    continue;
                };
                for (j, handler) in handlers.iter().enumerate() {
                    let at = format!("{at}.hooks[{j}]");
                    if let Some(hook) =
                        self.hook(file, handler, &at, event, dialect, matcher.clone())
                    {
                        self.pkg.hooks.push(hook);
                    }
                }
            }
        }
    }

    fn hook(
        &mut self,
        file: &Path,
        handler: &Value,
        at: &str,
        event: HookEvent,
        dialect: Format,
        matcher: Option<String>,
    ) -> Option<Hook> {
        let Value::Object(h) = handler else {
            self.error(
                file,
                format!("{at}: expected an object, found {}", kind(handler)),
            );
            return None;
        };
        let text = |key: &str| h.get(key).and_then(Value::as_str);
        let kind_name = text("type").unwrap_or("command");
        if h.contains_key("if") {
            self.info(
                file,
                format!("{at}: `if` names the agent's own tools, which an MCP server never sees; not run"),
            );
            return None;
        }
        if text("shell").is_some_and(|s| s != "bash") {
            self.warn(
                file,
                format!(
                    "{at}: only bash hooks run; this {} one does not",
                    text("shell").unwrap_or("")
                ),
            );
            return None;
        }
        if h.get("async").and_then(Value::as_bool) == Some(true) {
            self.info(
                file,
                format!("{at}: `async` hooks run in line; the call waits for them"),
            );
        }
        let gemini = dialect == Format::GeminiExtension;
        let handler = match kind_name {
            "command" => {
                let Some(command) = text("command").filter(|c| !c.trim().is_empty()) else {
                    self.error(file, format!("{at}: `command` is required"));
                    return None;
                };
                match h.get("args") {
                    Some(Value::Array(args)) => {
                        let mut argv = vec![claude_vars(command)];
                        argv.extend(args.iter().map(|a| {
                            claude_vars(
                                a.as_str()
                                    .map_or_else(|| a.to_string(), str::to_owned)
                                    .as_str(),
                            )
                        }));
                        HookHandler::Command { argv }
                    }
                    _ => {
                        if !gemini && command.contains("${user_config.") {
                            self.warn(file, format!("{at}: `${{user_config.*}}` is refused in shell-form hook commands (as Claude Code does); use `args`"));
                        }
                        let command = if gemini {
                            gemini_vars(command)
                        } else {
                            crate::expand::literal(command)
                        };
                        HookHandler::Command {
                            argv: vec!["sh".into(), "-c".into(), command],
                        }
                    }
                }
            }
            "http" => {
                let Some(url) = text("url") else {
                    self.error(file, format!("{at}: `url` is required"));
                    return None;
                };
                if h.contains_key("headers") {
                    self.warn(
                        file,
                        format!("{at}: `headers` of URL hooks are not sent by capmux"),
                    );
                }
                HookHandler::Http {
                    url: crate::expand::literal(url),
                }
            }
            other => {
                self.info(
                    file,
                    format!("{at}: `{other}` hooks ask the agent's model or tools; an MCP server cannot run them"),
                );
                return None;
            }
        };
        let timeout_ms = match h.get("timeout") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_f64().is_some_and(|t| t > 0.0) => {
                let t = n.as_f64().unwrap_or(0.0);
                Some(if gemini {
                    t as u64
                } else {
                    (t * 1000.0) as u64
                })
            }
            Some(other) => {
                self.error(
                    file,
                    format!("{at}.timeout: expected a positive number, found {other}"),
                );
                return None;
            }
        };
        Some(Hook {
            event,
            matcher,
            handler,
            timeout_ms,
            fail_open: None,
        })
    }

    /// The package, with the permissions its parts need declared (a foreign format has no
    /// permissions list; the user grants them).
    pub fn finish(mut self) -> Loaded {
        if !self.pkg.mcp_servers.is_empty() {
            self.pkg.permissions.insert(Permission::McpServer);
        }
        for hook in &self.pkg.hooks {
            self.pkg.permissions.insert(match hook.handler {
                HookHandler::Command { .. } => Permission::ShellExecute,
                HookHandler::Http { .. } => Permission::NetworkFetch,
            });
        }
        if self
            .pkg
            .prompts
            .iter()
            .any(|p| p.inline && p.template.contains("@{"))
        {
            self.pkg.permissions.insert(Permission::FsRead);
        }
        Loaded {
            package: Some(self.pkg),
            diagnostics: self.r.diagnostics,
        }
    }
}

/// The `name` of the JSON manifest `rel` at `root`, when it has a non-empty one.
pub(crate) fn manifest_name(root: &Path, rel: &str) -> Option<String> {
    let text = super::read::read_text(&root.join(rel)).ok()?;
    let json: Value = serde_json::from_str(&text).ok()?;
    json.get("name")?
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

/// Claude Code's events capmux sees, and what they are here.
const CLAUDE_EVENTS: &[(&str, HookEvent)] = &[
    ("PreToolUse", HookEvent::BeforeToolCall),
    ("PostToolUse", HookEvent::AfterToolCall),
    ("SessionStart", HookEvent::SessionStart),
    ("UserPromptSubmit", HookEvent::BeforeMessage),
    ("Stop", HookEvent::AfterResponse),
];

/// Gemini CLI's events capmux sees.
const GEMINI_EVENTS: &[(&str, HookEvent)] = &[
    ("BeforeTool", HookEvent::BeforeToolCall),
    ("AfterTool", HookEvent::AfterToolCall),
    ("SessionStart", HookEvent::SessionStart),
    ("BeforeAgent", HookEvent::BeforeMessage),
    ("AfterAgent", HookEvent::AfterResponse),
];

/// Events of Claude Code and Gemini CLI that happen inside the agent.
const UNSEEN_EVENTS: &[&str] = &[
    "Setup",
    "InstructionsLoaded",
    "UserPromptExpansion",
    "MessageDisplay",
    "PermissionRequest",
    "PermissionDenied",
    "PostToolUseFailure",
    "PostToolBatch",
    "Notification",
    "SubagentStart",
    "SubagentStop",
    "TaskCreated",
    "TaskCompleted",
    "StopFailure",
    "TeammateIdle",
    "ConfigChange",
    "CwdChanged",
    "DirectoryAdded",
    "FileChanged",
    "WorktreeCreate",
    "WorktreeRemove",
    "PreCompact",
    "PostCompact",
    "Elicitation",
    "ElicitationResult",
    "SessionEnd",
    "BeforeModel",
    "AfterModel",
    "BeforeToolSelection",
    "PreCompress",
];

/// The capmux event of a hooks-file event, and whose dialect (timeout unit, variables) it
/// is in. `SessionStart` is both's: the reading format decides.
fn map_event(name: &str, reading: Format) -> Option<(HookEvent, Format)> {
    let gemini_first = reading == Format::GeminiExtension;
    let (first, second) = if gemini_first {
        (GEMINI_EVENTS, CLAUDE_EVENTS)
    } else {
        (CLAUDE_EVENTS, GEMINI_EVENTS)
    };
    let dialect = |gemini: bool| {
        if gemini {
            Format::GeminiExtension
        } else {
            Format::ClaudePlugin
        }
    };
    if let Some((_, e)) = first.iter().find(|(n, _)| *n == name) {
        return Some((*e, dialect(gemini_first)));
    }
    second
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, e)| (*e, dialect(!gemini_first)))
}

/// Claude Code's variables as capmux's: the plugin's folders, the project, `user_config`,
/// and `${VAR:-default}` from the environment.
pub(crate) fn claude_vars(text: &str) -> String {
    crate::expand::translate(text, |name| {
        Some(match name {
            "CLAUDE_PLUGIN_ROOT" => "${pluginRoot}".into(),
            "CLAUDE_PLUGIN_DATA" => "${pluginData}".into(),
            "CLAUDE_PROJECT_DIR" => "${workspace}".into(),
            _ => match name.strip_prefix("user_config.") {
                Some(key) => format!("${{settings.{key}}}"),
                None if is_env_name(name.split(":-").next().unwrap_or("")) => {
                    format!("${{env:{name}}}")
                }
                None => return None,
            },
        })
    })
}

/// Gemini CLI's variables as capmux's; others stay as written, as Gemini CLI leaves them.
pub(crate) fn gemini_vars(text: &str) -> String {
    crate::expand::translate(text, |name| {
        Some(match name {
            "extensionPath" => "${pluginRoot}".into(),
            "workspacePath" => "${workspace}".into(),
            "/" | "pathSeparator" => "/".into(),
            _ => return None,
        })
    })
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// Applies `f` to every string of a server's launch.
pub(crate) fn map_server_strings(server: &mut McpServer, f: impl Fn(&str) -> String) {
    let map = |m: &mut BTreeMap<String, String>| {
        for v in m.values_mut() {
            *v = f(v);
        }
    };
    match &mut server.transport {
        super::Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            *command = f(command);
            for a in args.iter_mut() {
                *a = f(a);
            }
            map(env);
            if let Some(cwd) = cwd {
                *cwd = f(cwd);
            }
        }
        super::Transport::Http { url, headers } | super::Transport::Sse { url, headers } => {
            *url = f(url);
            map(headers);
        }
    }
}

/// `argument-hint` as text: YAML reads `[pr-number] [priority]` as a list.
fn hint_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => format!("[{s}]"),
                Value::Array(inner) => format!(
                    "[{}]",
                    inner
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// The first non-empty line of a body, without Markdown heading marks.
pub(crate) fn first_line(body: &str) -> Option<String> {
    body.lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// Component paths of a manifest: a string or an array of strings, relative to the root.
pub(crate) fn paths(b: &mut Build<'_>, file: &Path, key: &str, value: &Value) -> Vec<PathBuf> {
    let list: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        other => {
            b.error(
                file,
                format!(
                    "`{key}`: expected a path or an array of paths, found {}",
                    kind(other)
                ),
            );
            return Vec::new();
        }
    };
    list.into_iter()
        .filter_map(|rel| match super::read::resolve(b.r.root, rel) {
            Ok(path) => Some(path),
            Err(err) => {
                b.error(file, format!("`{key}`: {err}"));
                None
            }
        })
        .collect()
}
