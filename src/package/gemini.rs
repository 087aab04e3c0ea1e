//! Gemini CLI extensions: `gemini-extension.json`.
//!
//! `mcpServers` are child servers; `contextFileName` (default `GEMINI.md`) is system-prompt
//! text with its `@path` imports inlined; `commands/**/*.toml` are prompts named after their
//! path (`commands/gcs/sync.toml` is `gcs_sync`) with one `args` argument; `skills/` and
//! `agents/*.md` as in Claude Code; `hooks/hooks.json` with Gemini's events and millisecond
//! timeouts. `settings` are settings named by their `envVar`, set in the environment of the
//! extension's processes. `${extensionPath}`, `${workspacePath}` and `${/}` work in every
//! string of the manifest and the hooks; other `${…}` stay as written.

use std::path::Path;

use serde_json::Value;

use super::foreign::{self, Build};
use super::native::read_server_entries;
use super::read::kind;
use super::{Prompt, PromptArgument, Setting, SettingType, Syntax};

pub const MANIFEST: &str = "gemini-extension.json";

const KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "mcpServers",
    "contextFileName",
    "excludeTools",
    "settings",
    "themes",
    "plan",
    "migratedTo",
];

pub fn detect(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

/// The name its manifest gives it.
pub fn name(root: &Path) -> Option<String> {
    foreign::manifest_name(root, MANIFEST)
}

pub(crate) fn read(b: &mut Build<'_>) {
    let Some((file, m)) = b.manifest(MANIFEST) else {
        return;
    };
    let root = b.r.root.to_path_buf();
    b.r.unknown_keys(&m, KEYS, "extension");
    let text = |key: &str| m.get(key).and_then(Value::as_str).map(str::to_owned);
    if let Some(version) = text("version") {
        b.pkg.version.get_or_insert(version);
    }
    if let Some(description) = text("description") {
        b.pkg.description.get_or_insert(description);
    }
    for (key, why) in [
        ("themes", "themes are agent UI"),
        ("plan", "plan mode is the agent's own"),
        (
            "migratedTo",
            "the extension moved; install it from its new source",
        ),
    ] {
        if m.contains_key(key) {
            b.info(&file, format!("`{key}`: {why}; not served over MCP"));
        }
    }
    if let Some(settings) = m.get("settings") {
        read_settings(b, &file, settings);
    }

    // Servers, with the extension's variables; `excludeTools` naming their tools hides them.
    let mut servers = match m.get("mcpServers") {
        Some(Value::Object(servers)) => read_server_entries(&mut b.r, servers, "mcpServers"),
        Some(other) => {
            b.error(
                &file,
                format!("`mcpServers`: expected an object, found {}", kind(other)),
            );
            Vec::new()
        }
        None => Vec::new(),
    };
    for server in &mut servers {
        foreign::map_server_strings(server, foreign::gemini_vars);
    }
    match m.get("excludeTools") {
        Some(Value::Array(items)) => {
            for item in items.iter().filter_map(Value::as_str) {
                if item.contains('(')
                    || !item
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
                {
                    b.info(&file, format!("`excludeTools`: `{item}` restricts a Gemini CLI built-in tool; not applicable over MCP"));
                } else {
                    for server in &mut servers {
                        server.exclude_tools.push(item.to_owned());
                    }
                }
            }
        }
        Some(other) => b.error(
            &file,
            format!("`excludeTools`: expected an array, found {}", kind(other)),
        ),
        None => {}
    }
    b.add_servers(&file, servers);

    // Context files.
    let context: Vec<String> = match m.get("contextFileName") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(other) => {
            b.error(
                &file,
                format!(
                    "`contextFileName`: expected a file name or an array, found {}",
                    kind(other)
                ),
            );
            Vec::new()
        }
        None if root.join("GEMINI.md").is_file() => vec!["GEMINI.md".into()],
        None => Vec::new(),
    };
    for rel in context {
        match super::read::resolve(&root, &rel) {
            Ok(path) if path.is_file() => b.context_file(&path, true),
            Ok(_) => b.error(&file, format!("`contextFileName`: `{rel}` is not a file")),
            Err(err) => b.error(&file, format!("`contextFileName`: {err}")),
        }
    }

    let commands = root.join("commands");
    if commands.is_dir() {
        for toml_file in b.files_below(&commands, "toml") {
            command(b, &commands, &toml_file);
        }
    }
    if root.join("skills").is_dir() {
        b.skills_at(&root.join("skills"));
    }
    let agents = root.join("agents");
    if agents.is_dir() {
        let mut files = b.files_below(&agents, "md");
        files.retain(|f| f.parent() == Some(agents.as_path()));
        for md in files {
            b.agent(&md);
        }
    }
    let hooks = root.join("hooks/hooks.json");
    if hooks.is_file() {
        super::claude::hooks_file(b, &hooks);
    }
    for (name, why) in [
        ("policies", "policy rules of Gemini CLI's own tools"),
        (
            ".env",
            "setting values Gemini CLI stored at install; set them in capmux's config",
        ),
    ] {
        let path = root.join(name);
        if path.exists() {
            b.info(&path, format!("`{name}`: {why}; not read"));
        }
    }
}

/// `settings: [{name, description, envVar, sensitive}]`.
fn read_settings(b: &mut Build<'_>, file: &Path, settings: &Value) {
    let Value::Array(items) = settings else {
        b.error(
            file,
            format!("`settings`: expected an array, found {}", kind(settings)),
        );
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let Some(obj) = item.as_object() else {
            b.error(file, format!("settings[{i}]: expected an object"));
            continue;
        };
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let Some(var) = text("envVar").filter(|v| !v.is_empty()) else {
            b.error(file, format!("settings[{i}]: `envVar` is required"));
            continue;
        };
        b.pkg.settings.insert(
            var.clone(),
            Setting {
                kind: SettingType::String,
                label: text("name"),
                description: text("description"),
                default: None,
                secret: obj
                    .get("sensitive")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                required: false,
                options: Vec::new(),
            },
        );
        b.pkg
            .env
            .insert(var.clone(), format!("${{settings.{var}}}"));
    }
}

/// A `commands/**/*.toml` file: `prompt` (required) and `description`.
fn command(b: &mut Build<'_>, commands: &Path, file: &Path) {
    if !b.first_time(file) {
        return;
    }
    b.at(file);
    let text = match super::read::read_text(file) {
        Ok(text) => text,
        Err(err) => {
            b.error(file, err);
            return;
        }
    };
    let table: toml::Table = match toml::from_str(&text) {
        Ok(t) => t,
        Err(err) => {
            b.error(file, format!("invalid TOML: {}", err.message()));
            return;
        }
    };
    let Some(prompt) = table.get("prompt").and_then(toml::Value::as_str) else {
        b.error(file, "`prompt` (a string) is required");
        return;
    };
    for key in table
        .keys()
        .filter(|k| *k != "prompt" && *k != "description")
    {
        b.warn(file, format!("unknown key `{key}` is ignored"));
    }
    let rel = file
        .strip_prefix(commands)
        .unwrap_or(file)
        .with_extension("");
    let raw: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let Some(name) = b.item_name(file, &raw.join("_"), "command") else {
        return;
    };
    let description = table
        .get("description")
        .and_then(toml::Value::as_str)
        .map(str::to_owned)
        .or_else(|| Some(format!("Custom command /{}", raw.join(":"))));
    let inline = crate::slash::has_inline_shell(prompt);
    if inline {
        b.note_inline(file);
    }
    b.add_prompt(
        file,
        Prompt {
            name,
            title: None,
            description,
            arguments: vec![PromptArgument {
                name: crate::slash::ARGS.into(),
                description: Some("the text after the command, as `{{args}}`".into()),
                required: false,
            }],
            template: prompt.to_owned(),
            syntax: Syntax::Gemini,
            inline,
        },
    );
}
