//! AionUi extensions: `aion-extension.json`.
//!
//! `contributes.mcpServers[]` are child servers; `contributes.skills[]` are single-file
//! skills; `assistants[]` and `agents[]` are prompts whose text is their `contextFile`. A
//! `contributes` value may be `"$file:path"` (the JSON in that file), and a string
//! `%key%` is looked up in `i18n/<defaultLocale>/*.json` (`%ext.name%` is the key `name` of
//! `ext.json`). Lifecycle scripts, themes, adapters and the rest are AionUi's own.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::foreign::Build;
use super::read::{kind, resolve};
use super::skill::{self, Skill, SkillFile};
use super::{McpServer, Prompt, Syntax};

pub const MANIFEST: &str = "aion-extension.json";

const KEYS: &[&str] = &[
    "$schema",
    "name",
    "displayName",
    "version",
    "description",
    "author",
    "icon",
    "homepage",
    "apiVersion",
    "dependencies",
    "engine",
    "i18n",
    "lifecycle",
    "permissions",
    "contributes",
];

const CONTRIBUTES: &[&str] = &[
    "mcpServers",
    "skills",
    "assistants",
    "agents",
    "acpAdapters",
    "channelPlugins",
    "webui",
    "themes",
    "settingsTabs",
    "modelProviders",
];

pub fn detect(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

/// The name its manifest gives it.
pub fn name(root: &Path) -> Option<String> {
    super::foreign::manifest_name(root, MANIFEST)
}

pub(crate) fn read(b: &mut Build<'_>) {
    let Some((file, m)) = b.manifest(MANIFEST) else {
        return;
    };
    let root = b.r.root.to_path_buf();
    b.r.unknown_keys(&m, KEYS, "extension");
    let i18n = I18n::load(&root, m.get("i18n"));
    let text = |key: &str| m.get(key).and_then(Value::as_str).map(|s| i18n.text(s));
    if let Some(v) = text("version") {
        b.pkg.version.get_or_insert(v);
    }
    if let Some(v) = text("displayName") {
        b.pkg.display_name.get_or_insert(v);
    }
    if let Some(v) = text("description") {
        b.pkg.description.get_or_insert(v);
    }
    for (key, why) in [
        (
            "lifecycle",
            "lifecycle scripts run inside AionUi; capmux runs nothing at install or start",
        ),
        (
            "permissions",
            "AionUi's sandbox for its extension scripts; capmux asks for grants of its own",
        ),
        (
            "dependencies",
            "other extensions are not installed by capmux",
        ),
    ] {
        if m.contains_key(key) {
            b.info(&file, format!("`{key}`: {why}"));
        }
    }
    let contributes = match m.get("contributes") {
        Some(Value::Object(c)) => c.clone(),
        Some(other) => {
            b.error(
                &file,
                format!("`contributes`: expected an object, found {}", kind(other)),
            );
            return;
        }
        None => {
            b.error(&file, "`contributes` is required");
            return;
        }
    };
    b.r.unknown_keys(&contributes, CONTRIBUTES, "contributes");
    for (key, value) in &contributes {
        let Some(value) = indirect(b, &file, key, value) else {
            continue;
        };
        match key.as_str() {
            "mcpServers" => servers(b, &file, &value, &i18n),
            "skills" => skills(b, &file, &value, &i18n),
            "assistants" | "agents" => assistants(b, &file, key, &value, &i18n),
            other if CONTRIBUTES.contains(&other) => b.info(
                &file,
                format!("`contributes.{other}`: AionUi's own (agents, UI, providers); not served over MCP"),
            ),
            _ => {}
        }
    }
}

/// A contribution, or the JSON its `$file:` names.
fn indirect(b: &mut Build<'_>, file: &Path, key: &str, value: &Value) -> Option<Value> {
    let Some(rel) = value.as_str().and_then(|s| s.strip_prefix("$file:")) else {
        return Some(value.clone());
    };
    let path = match resolve(b.r.root, rel) {
        Ok(path) => path,
        Err(err) => {
            b.error(file, format!("`contributes.{key}`: {err}"));
            return None;
        }
    };
    let text = match super::read::read_text(&path) {
        Ok(t) => t,
        Err(err) => {
            b.error(&path, err);
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(v) => Some(v),
        Err(err) => {
            b.error(&path, format!("invalid JSON: {err}"));
            None
        }
    }
}

fn items<'v>(b: &mut Build<'_>, file: &Path, key: &str, value: &'v Value) -> &'v [Value] {
    match value {
        Value::Array(items) => &items[..items.len().min(super::MAX_ITEMS)],
        other => {
            b.error(
                file,
                format!(
                    "`contributes.{key}`: expected an array, found {}",
                    kind(other)
                ),
            );
            &[]
        }
    }
}

fn servers(b: &mut Build<'_>, file: &Path, value: &Value, i18n: &I18n) {
    let mut out: Vec<McpServer> = Vec::new();
    for (i, item) in items(b, file, "mcpServers", value).iter().enumerate() {
        let at = format!("contributes.mcpServers[{i}]");
        let Some(o) = item.as_object() else {
            b.error(file, format!("`{at}`: expected an object"));
            continue;
        };
        b.r.unknown_keys(o, &["name", "description", "enabled", "transport"], &at);
        let Some(raw) = o.get("name").and_then(Value::as_str) else {
            b.error(file, format!("`{at}`: `name` is required"));
            continue;
        };
        if o.get("enabled") == Some(&Value::Bool(false)) {
            b.info(file, format!("`{at}` `{raw}`: disabled; not started"));
            continue;
        }
        let Some(Value::Object(t)) = o.get("transport") else {
            b.error(file, format!("`{at}`: `transport` (an object) is required"));
            continue;
        };
        let Some(name) = b.item_name(file, raw, "server") else {
            continue;
        };
        b.at(file);
        let t_at = format!("{at}.transport");
        b.r.unknown_keys(
            t,
            &["type", "command", "args", "env", "url", "headers"],
            &t_at,
        );
        let Ok(mut transport) = super::native::read_transport(&mut b.r, t, &t_at) else {
            continue;
        };
        // AionUi expands no variables: every `${` is text.
        if let super::Transport::Stdio {
            command, args, env, ..
        } = &mut transport
        {
            *command = crate::expand::literal(command);
            args.iter_mut().for_each(|a| *a = crate::expand::literal(a));
            env.values_mut()
                .for_each(|v| *v = crate::expand::literal(v));
        }
        out.push(McpServer {
            name,
            description: o
                .get("description")
                .and_then(Value::as_str)
                .map(|d| i18n.text(d)),
            transport,
            lazy: false,
            timeout_ms: None,
            include_tools: None,
            exclude_tools: Vec::new(),
        });
    }
    b.add_servers(file, out);
}

/// Single-file skills: `{name, description, file}`.
fn skills(b: &mut Build<'_>, file: &Path, value: &Value, i18n: &I18n) {
    let mut out = Vec::new();
    for (i, item) in items(b, file, "skills", value).iter().enumerate() {
        let at = format!("contributes.skills[{i}]");
        let Some(o) = item.as_object() else {
            b.error(file, format!("`{at}`: expected an object"));
            continue;
        };
        let text = |k: &str| o.get(k).and_then(Value::as_str);
        let (Some(raw), Some(rel)) = (text("name"), text("file")) else {
            b.error(file, format!("`{at}`: `name` and `file` are required"));
            continue;
        };
        let Some(name) = b.item_name(file, raw, "skill") else {
            continue;
        };
        let path = match resolve(b.r.root, rel) {
            Ok(p) if p.is_file() => p,
            Ok(_) => {
                b.error(file, format!("`{at}.file`: `{rel}` is not a file"));
                continue;
            }
            Err(err) => {
                b.error(file, format!("`{at}.file`: {err}"));
                continue;
            }
        };
        let Some((frontmatter, body)) = b.markdown(&path) else {
            continue;
        };
        let description = text("description").map(|d| i18n.text(d)).or_else(|| {
            frontmatter
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let Some(description) = description.filter(|d| !d.trim().is_empty()) else {
            b.error(
                &path,
                format!("skill `{name}` not loaded: it has no `description`"),
            );
            continue;
        };
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let (Some(dir), Some(file_name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        out.push(Skill {
            name,
            dir: dir.to_path_buf(),
            description,
            frontmatter,
            body,
            files: vec![SkillFile {
                path: skill::SKILL_MD.into(),
                file: file_name.to_string_lossy().into_owned(),
                size: bytes.len() as u64,
                digest: skill::digest(&bytes),
                mime: "text/markdown",
            }],
            user_invocable: true,
            argument_hint: None,
        });
    }
    b.add_skills(out);
}

/// Assistants and agents as prompts: their context file is the text.
fn assistants(b: &mut Build<'_>, file: &Path, key: &str, value: &Value, i18n: &I18n) {
    for (i, item) in items(b, file, key, value).iter().enumerate() {
        let at = format!("contributes.{key}[{i}]");
        let Some(o) = item.as_object() else {
            b.error(file, format!("`{at}`: expected an object"));
            continue;
        };
        let text = |k: &str| o.get(k).and_then(Value::as_str).map(|s| i18n.text(s));
        let (Some(id), Some(rel)) = (text("id"), text("contextFile")) else {
            b.error(file, format!("`{at}`: `id` and `contextFile` are required"));
            continue;
        };
        let Some(name) = b.item_name(file, &id, "assistant") else {
            continue;
        };
        let template = match super::read::read_in_root(b.r.root, &rel) {
            Ok((_, t)) => t.trim().to_owned(),
            Err(err) => {
                b.error(file, format!("`{at}.contextFile`: {err}"));
                continue;
            }
        };
        let label = text("name").unwrap_or_else(|| id.clone());
        let description = Some(match text("description") {
            Some(d) => format!("Assistant {label}: {d}"),
            None => format!("Assistant {label}"),
        });
        b.add_prompt(
            file,
            Prompt {
                name,
                title: text("name"),
                description,
                arguments: Vec::new(),
                template,
                syntax: Syntax::Placeholders,
                inline: false,
            },
        );
    }
}

/// The strings of the default locale.
struct I18n {
    files: Map<String, Value>,
}

impl I18n {
    fn load(root: &Path, config: Option<&Value>) -> I18n {
        let field = |k: &str, default: &str| {
            config
                .and_then(|c| c.get(k))
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_owned()
        };
        let dir: PathBuf = root
            .join(field("localesDir", "i18n"))
            .join(field("defaultLocale", "en-US"));
        let mut files = Map::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "json")
                    && let Ok(text) = super::read::read_text(&path)
                    && let Ok(json) = serde_json::from_str::<Value>(&text)
                    && let Some(stem) = path.file_stem()
                {
                    files.insert(stem.to_string_lossy().into_owned(), json);
                }
            }
        }
        I18n { files }
    }

    /// `%file.key.path%` looked up; anything else as written.
    fn text(&self, s: &str) -> String {
        let Some(key) = s.strip_prefix('%').and_then(|k| k.strip_suffix('%')) else {
            return s.to_owned();
        };
        let mut parts = key.split('.');
        let mut value = parts.next().and_then(|f| self.files.get(f));
        for part in parts {
            value = value.and_then(|v| v.get(part));
        }
        value
            .and_then(Value::as_str)
            .map_or_else(|| s.to_owned(), str::to_owned)
    }
}
