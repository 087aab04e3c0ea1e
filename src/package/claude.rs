//! Claude Code plugins and marketplaces.
//!
//! A plugin is a folder with `.claude-plugin/plugin.json` (optional) and default folders:
//! `skills/` (or a root SKILL.md), `commands/**/*.md` (prompts), `agents/*.md` (prompts whose
//! text is the subagent's system prompt), `output-styles/*.md` (system prompts),
//! `hooks/hooks.json`, `.mcp.json` (wrapped or flat). `commands`, `agents` and
//! `outputStyles` in the manifest replace their default folder; `skills`, `hooks` and
//! `mcpServers` add to theirs. `userConfig` options are settings: `${user_config.KEY}` is
//! `${settings.KEY}`, and every process of the plugin gets `CLAUDE_PLUGIN_ROOT`,
//! `CLAUDE_PLUGIN_DATA`, `CLAUDE_PROJECT_DIR` and `CLAUDE_PLUGIN_OPTION_<KEY>`.
//!
//! A marketplace (`.claude-plugin/marketplace.json`) is a folder of plugins: each entry
//! whose source is a path in the marketplace loads as its own package; `strict: false`
//! entries are exactly the components they list. Entries from GitHub, git, npm or a URL
//! are listed with how to install them.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::foreign::{self, Build};
use super::native::read_server_entries;
use super::read::kind;
use super::{Format, Loaded, Setting, SettingType, Source};

pub const MANIFEST: &str = ".claude-plugin/plugin.json";
pub const MARKETPLACE: &str = ".claude-plugin/marketplace.json";

/// The keys of plugin.json (and of a marketplace entry) capmux reads or knowingly skips.
const KEYS: &[&str] = &[
    "$schema",
    "name",
    "displayName",
    "version",
    "description",
    "author",
    "homepage",
    "repository",
    "license",
    "keywords",
    "metadata",
    "defaultEnabled",
    "skills",
    "commands",
    "agents",
    "workflows",
    "hooks",
    "mcpServers",
    "outputStyles",
    "lspServers",
    "experimental",
    "userConfig",
    "channels",
    "dependencies",
];

/// A marketplace entry's own keys, besides the plugin's.
const ENTRY_KEYS: &[&str] = &["source", "category", "tags", "strict", "relevance"];

/// Whether `dir` is a Claude Code plugin: a manifest, or, when no other agent's manifest
/// claims the folder, one of its default parts (Gemini CLI extensions and Codex plugins
/// have `commands/`, `agents/`, `hooks/hooks.json` and `.mcp.json` too).
pub fn detect(dir: &Path) -> bool {
    if dir.join(MANIFEST).is_file() {
        return true;
    }
    let other = super::gemini::detect(dir) || super::codex::detect(dir) || super::aion::detect(dir);
    !other
        && (["commands", "agents", "output-styles"]
            .iter()
            .any(|d| dir.join(d).is_dir())
            || dir.join("hooks/hooks.json").is_file()
            || dir.join(".mcp.json").is_file())
}

/// Whether `dir` is a Claude Code marketplace.
pub fn detect_marketplace(dir: &Path) -> bool {
    dir.join(MARKETPLACE).is_file()
}

/// The name its manifest gives it.
pub fn name(root: &Path) -> Option<String> {
    foreign::manifest_name(root, MANIFEST)
}

/// Reads the plugin at the build's root into it.
pub(crate) fn read(b: &mut Build<'_>) {
    let manifest_path = b.r.root.join(MANIFEST);
    let manifest = if manifest_path.is_file() {
        b.first_time(&manifest_path);
        b.json(&manifest_path)
    } else {
        None
    };
    read_plugin(b, &manifest_path, manifest.as_ref(), true);
}

/// A plugin from its manifest (or a marketplace entry); `defaults` scans the default
/// folders (a `strict: false` entry lists every part instead).
fn read_plugin(
    b: &mut Build<'_>,
    file: &Path,
    manifest: Option<&Map<String, Value>>,
    defaults: bool,
) {
    let empty = Map::new();
    let m = manifest.unwrap_or(&empty);
    if manifest.is_some() {
        b.at(file);
        let mut known: Vec<&str> = KEYS.to_vec();
        known.extend_from_slice(ENTRY_KEYS);
        b.r.unknown_keys(m, &known, "plugin");
        read_metadata(b, file, m);
    }
    let root = b.r.root.to_path_buf();
    b.pkg.env.extend([
        ("CLAUDE_PLUGIN_ROOT".to_owned(), "${pluginRoot}".to_owned()),
        ("CLAUDE_PLUGIN_DATA".to_owned(), "${pluginData}".to_owned()),
        ("CLAUDE_PROJECT_DIR".to_owned(), "${workspace}".to_owned()),
    ]);
    if let Some(config) = m.get("userConfig") {
        user_config(b, file, config);
    }
    unsupported(b, file, m, defaults);

    // Skills: the manifest's paths add to `skills/`; a root SKILL.md is a one-skill plugin.
    let listed = m
        .get("skills")
        .map(|v| foreign::paths(b, file, "skills", v));
    if defaults && root.join("skills").is_dir() {
        b.skills_at(&root.join("skills"));
    }
    for dir in listed.iter().flatten() {
        b.skills_at(dir);
    }
    if defaults
        && listed.is_none()
        && !root.join("skills").is_dir()
        && super::skill::find_entry(&root).is_some()
        && b.first_time(&root.join(super::skill::SKILL_MD))
    {
        let id = b.pkg.id.clone();
        let skip = [
            ".claude-plugin",
            "commands",
            "agents",
            "output-styles",
            "hooks",
            ".mcp.json",
        ];
        if let Some(skill) = super::skill::load_skipping(&root, &skip, &id, &mut b.r.diagnostics) {
            b.add_skills(vec![skill]);
        }
    }

    for path in component(b, file, m, "commands", "commands", defaults) {
        if path.is_dir() {
            for md in b.files_below(&path, "md") {
                command(b, &md);
            }
        } else {
            command(b, &path);
        }
    }
    for path in component(b, file, m, "agents", "agents", defaults) {
        for md in md_files(b, &path) {
            b.agent(&md);
        }
    }
    for path in component(b, file, m, "outputStyles", "output-styles", defaults) {
        for md in md_files(b, &path) {
            output_style(b, &md);
        }
    }

    // Hooks: hooks/hooks.json, then the manifest's files or inline object.
    let default_hooks = root.join("hooks/hooks.json");
    if defaults && default_hooks.is_file() {
        hooks_file(b, &default_hooks);
    }
    match m.get("hooks") {
        Some(Value::Object(inline)) => {
            b.at(file);
            b.hooks(file, inline);
        }
        Some(value) => {
            for path in foreign::paths(b, file, "hooks", value) {
                hooks_file(b, &path);
            }
        }
        None => {}
    }

    // Servers: .mcp.json, then the manifest's files or inline object.
    let default_servers = root.join(".mcp.json");
    if defaults && default_servers.is_file() {
        servers_file(b, &default_servers);
    }
    match m.get("mcpServers") {
        Some(Value::Object(inline)) => {
            b.at(file);
            let servers = claude_servers(b, inline, "mcpServers");
            b.add_servers(file, servers);
        }
        Some(value) => {
            for path in foreign::paths(b, file, "mcpServers", value) {
                servers_file(b, &path);
            }
        }
        None => {}
    }
}

fn read_metadata(b: &mut Build<'_>, file: &Path, m: &Map<String, Value>) {
    let text = |b: &mut Build<'_>, key: &str| match m.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            b.error(
                file,
                format!("`{key}`: expected a string, found {}", kind(other)),
            );
            None
        }
    };
    if let Some(version) = text(b, "version") {
        b.pkg.version.get_or_insert(version);
    }
    if let Some(display) = text(b, "displayName") {
        b.pkg.display_name.get_or_insert(display);
    }
    if let Some(description) = text(b, "description") {
        b.pkg.description.get_or_insert(description);
    }
    if let Some(category) = text(b, "category") {
        b.pkg.category.get_or_insert(category);
    }
    if let Some(keywords) = m.get("keywords")
        && !keywords.is_array()
    {
        b.error(file, "`keywords`: expected an array of strings");
    }
    if m.get("defaultEnabled") == Some(&Value::Bool(false)) {
        b.info(
            file,
            "`defaultEnabled: false`: capmux loads the plugin; disable it with `enabled = false` in the config",
        );
    }
}

/// What a plugin has that an MCP server cannot honour: info diagnostics.
fn unsupported(b: &mut Build<'_>, file: &Path, m: &Map<String, Value>, defaults: bool) {
    let root = b.r.root.to_path_buf();
    let said = [
        ("lspServers", "LSP servers feed the agent's editor features"),
        ("workflows", "workflows are scripts of the agent's own loop"),
        ("channels", "channels route the agent's own messages"),
        (
            "dependencies",
            "plugin dependencies are not installed by capmux; add them as packages of their own",
        ),
    ];
    for (key, why) in said {
        if m.contains_key(key) {
            b.info(file, format!("`{key}`: {why}; not served over MCP"));
        }
    }
    if let Some(Value::Object(exp)) = m.get("experimental") {
        for key in exp.keys() {
            b.info(
                file,
                format!("`experimental.{key}`: agent UI; not served over MCP"),
            );
        }
    }
    if !defaults {
        return;
    }
    let files = [
        (".lsp.json", "LSP servers feed the agent's editor features"),
        ("themes", "themes are agent UI"),
        ("monitors", "monitors run inside the agent"),
        ("workflows", "workflows are scripts of the agent's own loop"),
        (
            "bin",
            "executables for the agent's shell; capmux's processes do not get them on PATH",
        ),
        (
            "settings.json",
            "agent settings (the default agent, the status line)",
        ),
        (
            "CLAUDE.md",
            "a plugin's CLAUDE.md is not context in Claude Code either",
        ),
    ];
    for (name, why) in files {
        let path = root.join(name);
        if path.exists() && !(name == ".lsp.json" && m.contains_key("lspServers")) {
            b.info(&path, format!("`{name}`: {why}; not served over MCP"));
        }
    }
}

/// `userConfig` as settings, with `CLAUDE_PLUGIN_OPTION_<KEY>` for every process.
fn user_config(b: &mut Build<'_>, file: &Path, config: &Value) {
    let Value::Object(options) = config else {
        b.error(
            file,
            format!("`userConfig`: expected an object, found {}", kind(config)),
        );
        return;
    };
    for (key, option) in options {
        let at = format!("userConfig.{key}");
        let Value::Object(o) = option else {
            b.error(
                file,
                format!("`{at}`: expected an object, found {}", kind(option)),
            );
            continue;
        };
        let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        let kind_name = text("type").unwrap_or_else(|| "string".into());
        let setting_kind = match kind_name.as_str() {
            "string" | "directory" | "file" => SettingType::String,
            "number" => SettingType::Number,
            "boolean" => SettingType::Boolean,
            other => {
                b.error(file, format!("`{at}.type`: `{other}` is not one of string, number, boolean, directory, file"));
                continue;
            }
        };
        let multiple = o.get("multiple").and_then(Value::as_bool) == Some(true);
        let setting = Setting {
            kind: if multiple {
                SettingType::Multiselect
            } else {
                setting_kind
            },
            label: text("title"),
            description: text("description"),
            default: o.get("default").cloned(),
            secret: o.get("sensitive").and_then(Value::as_bool).unwrap_or(false),
            required: o.get("required").and_then(Value::as_bool).unwrap_or(false),
            options: Vec::new(),
        };
        let env_key = crate::expand::env_name(key);
        b.pkg.env.insert(
            format!("CLAUDE_PLUGIN_OPTION_{env_key}"),
            format!("${{settings.{key}}}"),
        );
        b.pkg.settings.insert(key.clone(), setting);
    }
}

/// The paths of a component: the manifest's (replacing the default) or the default folder.
fn component(
    b: &mut Build<'_>,
    file: &Path,
    m: &Map<String, Value>,
    key: &str,
    default: &str,
    defaults: bool,
) -> Vec<PathBuf> {
    match m.get(key) {
        Some(value) => foreign::paths(b, file, key, value),
        None if defaults && b.r.root.join(default).is_dir() => vec![b.r.root.join(default)],
        None => Vec::new(),
    }
}

/// The `.md` files of a folder (not below), or the file itself.
fn md_files(b: &mut Build<'_>, path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = b.files_below(path, "md");
    files.retain(|f| f.parent() == Some(path));
    files
}

/// A command: named after its file, subfolders only in its description.
fn command(b: &mut Build<'_>, file: &Path) {
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    b.slash_command(file, &name, None);
}

fn output_style(b: &mut Build<'_>, file: &Path) {
    if !b.first_time(file) {
        return;
    }
    let Some((fm, body)) = b.markdown(file) else {
        return;
    };
    if body.trim().is_empty() {
        b.info(
            file,
            "empty output style; nothing added to the system prompt",
        );
        return;
    }
    let rel = b.rel(file);
    let name = fm.get("name").and_then(Value::as_str).map(str::to_owned);
    let content = match name {
        Some(name) => format!("Output style \"{name}\":\n\n{body}"),
        None => body,
    };
    b.pkg.system_prompts.push(super::SystemPrompt {
        content: content.replace("${CLAUDE_PLUGIN_ROOT}", &b.r.root.display().to_string()),
        priority: super::DEFAULT_PRIORITY,
        providers: None,
        file: Some(PathBuf::from(rel)),
    });
}

pub(crate) fn hooks_file(b: &mut Build<'_>, file: &Path) {
    if !b.first_time(file) {
        return;
    }
    if let Some(config) = b.json(file) {
        b.hooks(file, &config);
    }
}

/// A `.mcp.json`: `{"mcpServers": {…}}` or the flat `{name: {…}}`.
pub(crate) fn servers_file(b: &mut Build<'_>, file: &Path) {
    if !b.first_time(file) {
        return;
    }
    let Some(top) = b.json(file) else {
        return;
    };
    let (servers, prefix) = match top.get("mcpServers") {
        Some(Value::Object(servers)) => (servers.clone(), "mcpServers"),
        Some(other) => {
            b.error(
                file,
                format!("`mcpServers`: expected an object, found {}", kind(other)),
            );
            return;
        }
        None => {
            let flat: Map<String, Value> = top
                .into_iter()
                .filter(|(k, v)| {
                    let server = v
                        .as_object()
                        .is_some_and(|o| o.contains_key("command") || o.contains_key("url"));
                    if !server {
                        b.r.diagnostics.push(
                            crate::diagnostic::Diagnostic::info(
                                file,
                                format!("`{k}` is not a server (no `command` or `url`); ignored"),
                            )
                            .in_package(b.pkg.id.clone()),
                        );
                    }
                    server
                })
                .collect();
            (flat, "")
        }
    };
    let servers = claude_servers(b, &servers, prefix);
    b.add_servers(file, servers);
}

/// Servers with Claude Code's variables made capmux's.
fn claude_servers(
    b: &mut Build<'_>,
    servers: &Map<String, Value>,
    prefix: &str,
) -> Vec<super::McpServer> {
    let mut out = read_server_entries(&mut b.r, servers, prefix);
    for server in &mut out {
        foreign::map_server_strings(server, foreign::claude_vars);
    }
    out
}

/// The packages of the marketplace at `root`: one per entry whose source is inside it.
pub fn load_marketplace(root: &Path, source: Source) -> Vec<Loaded> {
    let file = root.join(MARKETPLACE);
    let market_id = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "marketplace".into());
    let mut top = Build::new(root, source, market_id, Format::ClaudePlugin);
    let Some(m) = top.json(&file) else {
        return vec![Loaded {
            package: None,
            diagnostics: top.r.diagnostics,
        }];
    };
    let market = m
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("marketplace")
        .to_owned();
    top.r.package = market.clone();
    top.r.unknown_keys(
        &m,
        &[
            "$schema",
            "name",
            "owner",
            "plugins",
            "description",
            "version",
            "metadata",
            "allowCrossMarketplaceDependenciesOn",
            "renames",
        ],
        "marketplace",
    );
    let plugin_root = m
        .get("metadata")
        .and_then(|md| md.get("pluginRoot"))
        .and_then(Value::as_str)
        .unwrap_or(".")
        .to_owned();
    let Some(Value::Array(entries)) = m.get("plugins") else {
        top.error(&file, "`plugins`: an array of plugin entries is required");
        return vec![Loaded {
            package: None,
            diagnostics: top.r.diagnostics,
        }];
    };
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate().take(super::MAX_ITEMS) {
        let Value::Object(entry) = entry else {
            top.error(
                &file,
                format!("plugins[{i}]: expected an object, found {}", kind(entry)),
            );
            continue;
        };
        let Some(entry_name) = entry.get("name").and_then(Value::as_str) else {
            top.error(&file, format!("plugins[{i}]: `name` is required"));
            continue;
        };
        let dir = match entry.get("source") {
            Some(Value::String(rel)) => {
                let rel = if rel.starts_with("./") || rel == "." || rel.starts_with("../") {
                    rel.clone()
                } else {
                    format!("{plugin_root}/{rel}")
                };
                match super::read::resolve(root, &rel) {
                    Ok(dir) if dir.is_dir() => dir,
                    Ok(_) => {
                        top.error(
                            &file,
                            format!("plugins[{i}] `{entry_name}`: source `{rel}` is not a folder"),
                        );
                        continue;
                    }
                    Err(err) => {
                        top.error(&file, format!("plugins[{i}] `{entry_name}`: source {err}"));
                        continue;
                    }
                }
            }
            Some(Value::Object(remote)) => {
                let how = remote.get("source").and_then(Value::as_str).unwrap_or("?");
                top.info(
                    &file,
                    format!(
                        "plugins[{i}] `{entry_name}` comes from {how} ({}); it is listed, not loaded: `capmux marketplace add` this marketplace, then `capmux install {entry_name}@{market}`",
                        Value::Object(remote.clone()),
                    ),
                );
                continue;
            }
            _ => {
                top.error(
                    &file,
                    format!("plugins[{i}] `{entry_name}`: `source` is required"),
                );
                continue;
            }
        };
        let strict = entry.get("strict").and_then(Value::as_bool).unwrap_or(true);
        let mut b = Build::new(&dir, source, entry_name.to_owned(), Format::ClaudePlugin);
        if strict {
            read(&mut b);
            // The entry describes what the plugin's own manifest leaves out.
            let mut described = Map::new();
            for key in ["description", "version", "category"] {
                if let Some(v) = entry.get(key) {
                    described.insert(key.to_owned(), v.clone());
                }
            }
            read_metadata(&mut b, &file, &described);
            if let Some(own) = name(&dir).filter(|own| own != entry_name) {
                b.info(&file, format!("plugins[{i}]: the plugin calls itself `{own}`; it is served as `{entry_name}`"));
            }
        } else {
            if dir.join(MANIFEST).is_file() && name(&dir).is_some() {
                let manifest = dir.join(MANIFEST);
                b.warn(
                    &manifest,
                    "a `strict: false` entry is the whole definition; this plugin.json is not read",
                );
            }
            read_plugin(&mut b, &file, Some(entry), false);
        }
        out.push(b.finish());
    }
    if out.is_empty() {
        top.info(
            &file,
            format!("marketplace `{market}` has no plugin in this folder"),
        );
    }
    out.push(Loaded {
        package: None,
        diagnostics: top.r.diagnostics,
    });
    out
}
