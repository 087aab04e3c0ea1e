//! OpenAI Codex: plugins (`.codex-plugin/plugin.json`) and the `[mcp_servers]` of a
//! `config.toml`.
//!
//! A plugin's `skills` folder adds to `skills/`; `mcpServers` names a Claude-style servers
//! file (default `.mcp.json`); `hooks` a Claude-style hooks file (default
//! `hooks/hooks.json`); `AGENTS.md` (or `AGENTS.override.md`) is system-prompt text;
//! `prompts/*.md` are Codex custom prompts (`$1`… counted from 1).
//!
//! A `config.toml` is a servers config file: each `[mcp_servers.NAME]` a child server
//! (`env_vars` and `bearer_token_env_var` read the named variables when it starts).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::foreign::Build;
use super::read::kind;
use super::{Loaded, McpServer, Package, Permission, Source, Transport};

pub const MANIFEST: &str = ".codex-plugin/plugin.json";

const KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "author",
    "homepage",
    "repository",
    "license",
    "keywords",
    "skills",
    "mcpServers",
    "apps",
    "hooks",
    "interface",
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
    b.r.unknown_keys(&m, KEYS, "plugin");
    let text = |key: &str| m.get(key).and_then(Value::as_str).map(str::to_owned);
    if let Some(v) = text("version") {
        b.pkg.version.get_or_insert(v);
    }
    let interface = m.get("interface").and_then(Value::as_object);
    let from_interface = |key: &str| {
        interface
            .and_then(|i| i.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let Some(d) = text("description").or_else(|| from_interface("shortDescription")) {
        b.pkg.description.get_or_insert(d);
    }
    if let Some(d) = from_interface("displayName") {
        b.pkg.display_name.get_or_insert(d);
    }
    if m.contains_key("apps") {
        b.info(
            &file,
            "`apps`: ChatGPT connectors run only inside OpenAI's products; not served over MCP",
        );
    }
    // Paths: relative, `./…`, never `..` (Codex ignores such a path with a warning).
    let path_of = |b: &mut Build<'_>, key: &str, default: &str| -> Option<std::path::PathBuf> {
        match m.get(key) {
            Some(Value::String(rel)) => match super::read::resolve(&root, rel) {
                Ok(path) => Some(path),
                Err(err) => {
                    b.warn(&file, format!("`{key}`: {err}; ignored"));
                    None
                }
            },
            Some(other) => {
                b.error(
                    &file,
                    format!("`{key}`: expected a path, found {}", kind(other)),
                );
                None
            }
            None => Some(root.join(default)).filter(|p| p.exists()),
        }
    };
    if root.join("skills").is_dir() {
        b.skills_at(&root.join("skills"));
    }
    if let Some(skills) = path_of(b, "skills", "skills") {
        b.skills_at(&skills);
    }
    if let Some(servers) = path_of(b, "mcpServers", ".mcp.json") {
        super::claude::servers_file(b, &servers);
    }
    if let Some(hooks) = path_of(b, "hooks", "hooks/hooks.json") {
        super::claude::hooks_file(b, &hooks);
    }
    for name in ["AGENTS.override.md", "AGENTS.md"] {
        let path = root.join(name);
        if path.is_file() {
            b.context_file(&path, false);
            break;
        }
    }
    let prompts = root.join("prompts");
    if prompts.is_dir() {
        let mut files = b.files_below(&prompts, "md");
        files.retain(|f| f.parent() == Some(prompts.as_path()));
        for md in files {
            let stem = md
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            b.slash_command(&md, &stem, Some(true));
        }
    }
}

/// Whether `file` is a TOML file with an `[mcp_servers]` table.
pub fn detect_config(file: &Path) -> bool {
    file.is_file()
        && file.extension().is_some_and(|e| e == "toml")
        && super::read::read_text(file)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .is_some_and(|t| t.contains_key("mcp_servers"))
}

/// A Codex `config.toml` as a servers config package (id `<folder>/<file>`).
pub fn load_config(file: &Path, source: Source) -> Loaded {
    let root = file.parent().unwrap_or(Path::new("."));
    let id = super::native::servers_id(file);
    let mut b = Build::new(root, source, id.clone(), super::Format::Servers);
    b.at(file);
    let table: toml::Table = match super::read::read_text(file).and_then(|t| {
        t.parse::<toml::Table>()
            .map_err(|e| format!("invalid TOML: {}", e.message()))
    }) {
        Ok(t) => t,
        Err(err) => {
            b.error(file, err);
            return Loaded {
                package: None,
                diagnostics: b.r.diagnostics,
            };
        }
    };
    let Some(toml::Value::Table(servers)) = table.get("mcp_servers") else {
        b.error(file, "`mcp_servers`: expected a table of servers");
        return Loaded {
            package: None,
            diagnostics: b.r.diagnostics,
        };
    };
    let mut out = Vec::new();
    for (raw_name, entry) in servers.iter().take(super::MAX_ITEMS) {
        let at = format!("mcp_servers.{raw_name}");
        let json = match serde_json::to_value(entry) {
            Ok(Value::Object(obj)) => obj,
            _ => {
                b.error(file, format!("`{at}`: expected a table"));
                continue;
            }
        };
        if let Some(server) = config_server(&mut b, file, raw_name, &json, &at) {
            out.push(server);
        }
    }
    let Build { r, .. } = b;
    Loaded {
        package: Some(Package {
            permissions: [Permission::McpServer].into(),
            mcp_servers: out,
            ..Package::empty(id, source, root, super::Format::Servers)
        }),
        diagnostics: r.diagnostics,
    }
}

fn config_server(
    b: &mut Build<'_>,
    file: &Path,
    raw_name: &str,
    o: &serde_json::Map<String, Value>,
    at: &str,
) -> Option<McpServer> {
    const KNOWN: &[&str] = &[
        "command",
        "args",
        "env",
        "env_vars",
        "cwd",
        "url",
        "bearer_token_env_var",
        "http_headers",
        "env_http_headers",
        "bearer_token",
        "startup_timeout_sec",
        "startup_timeout_ms",
        "tool_timeout_sec",
        "enabled",
        "required",
        "supports_parallel_tool_calls",
        "default_tools_approval_mode",
        "enabled_tools",
        "disabled_tools",
        "tools",
        "scopes",
        "oauth_resource",
        "experimental_environment",
        "name",
    ];
    b.r.unknown_keys(o, KNOWN, at);
    if o.get("enabled") == Some(&Value::Bool(false)) {
        b.info(file, format!("`{at}`: disabled; not started"));
        return None;
    }
    for key in [
        "startup_timeout_sec",
        "startup_timeout_ms",
        "required",
        "supports_parallel_tool_calls",
        "default_tools_approval_mode",
        "tools",
        "scopes",
        "oauth_resource",
        "experimental_environment",
        "bearer_token",
    ] {
        if o.contains_key(key) {
            b.info(
                file,
                format!("`{at}.{key}`: a setting of Codex; capmux ignores it"),
            );
        }
    }
    let name = b.item_name(file, raw_name, "server")?;
    let strings = |key: &str| -> Vec<String> {
        o.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let map = |key: &str| -> BTreeMap<String, String> {
        o.get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        (k.clone(), crate::expand::literal(&v))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let text = |key: &str| o.get(key).and_then(Value::as_str).map(str::to_owned);
    let transport = match (text("command"), text("url")) {
        (Some(command), None) => {
            let mut env = map("env");
            for var in strings("env_vars") {
                env.insert(var.clone(), format!("${{env:{var}}}"));
            }
            Transport::Stdio {
                command: crate::expand::literal(&command),
                args: strings("args")
                    .iter()
                    .map(|a| crate::expand::literal(a))
                    .collect(),
                env,
                cwd: text("cwd").map(|c| crate::expand::literal(&c)),
            }
        }
        (None, Some(url)) => {
            let mut headers = map("http_headers");
            for (header, var) in map("env_http_headers") {
                headers.insert(header, format!("${{env:{var}}}"));
            }
            if let Some(var) = text("bearer_token_env_var") {
                headers.insert("Authorization".into(), format!("Bearer ${{env:{var}}}"));
            }
            Transport::Http {
                url: crate::expand::literal(&url),
                headers,
            }
        }
        (Some(_), Some(_)) => {
            b.error(file, format!("`{at}`: give `command` or `url`, not both"));
            return None;
        }
        (None, None) => {
            b.error(
                file,
                format!("`{at}`: invalid transport: needs `command` or `url`"),
            );
            return None;
        }
    };
    let timeout_ms = o
        .get("tool_timeout_sec")
        .and_then(Value::as_f64)
        .filter(|t| *t > 0.0)
        .map(|t| (t * 1000.0) as u64);
    Some(McpServer {
        name,
        description: None,
        transport,
        lazy: false,
        timeout_ms,
        include_tools: o.get("enabled_tools").map(|_| strings("enabled_tools")),
        exclude_tools: strings("disabled_tools"),
    })
}
