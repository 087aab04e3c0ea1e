//! The native format: `package.json` with a `"capmux"` object, or the same object under
//! `"aionui"` (the AionUi plugin RFC's field), read the same way.
//!
//! package.json is read leniently as a `serde_json::Value` rather than through the
//! `npm-package-json` crate: that crate rejects shapes real packages publish (a string
//! `bin`, no `version`, a string `bugs`), and reading field by field lets every problem
//! become its own diagnostic with the JSON path of the field, instead of one parse failure
//! for the whole package. Unknown keys are warnings; a bad item is dropped with an error and
//! its siblings load.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::read::{Bad, Parsed, Reader, kind, read_text, resolve};
use super::skill::{self, Skill};
use super::{
    DEFAULT_PRIORITY, Format, Hook, HookEvent, HookHandler, Loaded, MAX_ITEMS, McpServer, Package,
    Permission, Prompt, PromptArgument, Setting, SettingType, Source, SystemPrompt, Tool,
    ToolHandler, Transport,
};
use crate::diagnostic::{Diagnostic, Severity};

/// The manifest file of the native format.
pub const MANIFEST: &str = "package.json";

/// The manifest version this build reads.
pub const MANIFEST_VERSION: u64 = 1;

/// Default and longest run time of a command tool.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
pub const MAX_TIMEOUT_MS: u64 = 600_000;

const CAPMUX_KEYS: &[&str] = &[
    "manifestVersion",
    "pluginVersion",
    "displayName",
    "description",
    "category",
    "icon",
    "minHostVersion",
    "priority",
    "permissions",
    "systemPrompts",
    "skills",
    "prompts",
    "tools",
    "mcpServers",
    "hooks",
    "settings",
    "agents",
];

/// The manifest path when `dir` holds a package.json.
pub fn detect(dir: &Path) -> Option<PathBuf> {
    let manifest = dir.join(MANIFEST);
    manifest.is_file().then_some(manifest)
}

/// A plain npm MCP server (a `bin`, no manifest of ours) as a package with one child
/// server: its `bin` run with node (or as it is, when it is not JavaScript).
pub fn load_npm_server(root: &Path, source: Source) -> Loaded {
    let manifest = root.join(MANIFEST);
    let folder = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "package".into());
    let mut r = Reader {
        root,
        manifest: manifest.clone(),
        package: folder.clone(),
        key: "bin",
        on_path: HashMap::new(),
        diagnostics: Vec::new(),
    };
    let json: Map<String, Value> = match read_text(&manifest)
        .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("invalid JSON: {e}")))
    {
        Ok(json) => json,
        Err(err) => {
            r.error(err);
            return Loaded {
                package: None,
                diagnostics: r.diagnostics,
            };
        }
    };
    let text = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_owned);
    let id = text("name").unwrap_or(folder);
    r.package = id.clone();
    let short = id.rsplit('/').next().unwrap_or(&id).to_owned();
    let bins: Vec<(String, String)> = match json.get("bin") {
        Some(Value::String(path)) => vec![(short.clone(), path.clone())],
        Some(Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect(),
        _ => Vec::new(),
    };
    let Some((bin_name, bin)) = bins
        .iter()
        .find(|(k, _)| *k == short)
        .or_else(|| bins.iter().find(|(k, _)| k.contains("mcp")))
        .or(bins.first())
        .cloned()
    else {
        r.error("`bin`: no program to run");
        return Loaded {
            package: None,
            diagnostics: r.diagnostics,
        };
    };
    if bins.len() > 1 {
        r.info(format!(
            "`bin` has {} programs; `{bin_name}` is run as the MCP server",
            bins.len()
        ));
    }
    r.info(format!(
        "no \"capmux\" object: served as a plain MCP server, `{bin}` run as its one child server"
    ));
    let Ok(name) = r.item_name(&bin_name, "server", "bin") else {
        return Loaded {
            package: None,
            diagnostics: r.diagnostics,
        };
    };
    let path = format!("${{pluginRoot}}/{}", bin.trim_start_matches("./"));
    let javascript = [".js", ".mjs", ".cjs"].iter().any(|e| bin.ends_with(e)) || !bin.contains('.');
    let (command, args) = if javascript {
        ("node".to_owned(), vec![path])
    } else {
        (path, Vec::new())
    };
    let package = Package {
        version: text("version"),
        description: text("description"),
        permissions: BTreeSet::from([Permission::McpServer]),
        mcp_servers: vec![McpServer {
            name,
            description: text("description"),
            transport: Transport::Stdio {
                command,
                args,
                env: BTreeMap::new(),
                cwd: None,
            },
            lazy: false,
            timeout_ms: None,
            include_tools: None,
            exclude_tools: Vec::new(),
        }],
        ..Package::empty(id, source, root, Format::NpmServer)
    };
    Loaded {
        package: Some(package),
        diagnostics: r.diagnostics,
    }
}

/// What a package.json is to capmux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// It holds a `"capmux"` or `"aionui"` object.
    Ours,
    /// Not ours, but it has a `bin`: a plain MCP server.
    Bin,
    /// Neither (or unreadable: the native reader says why).
    Other,
}

/// Reads the package.json `manifest` once to tell what it is.
pub fn inspect(manifest: &Path) -> Kind {
    let json = read_text(manifest)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok());
    match json {
        Some(j) if j.get("capmux").is_some() || j.get("aionui").is_some() => Kind::Ours,
        Some(j) if j.get("bin").is_some_and(|b| b.is_string() || b.is_object()) => Kind::Bin,
        _ => Kind::Other,
    }
}

/// Loads the native package whose manifest is `manifest`.
pub fn load(root: &Path, manifest: &Path, source: Source) -> Loaded {
    let folder_name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "package".into());
    let mut reader = Reader {
        root,
        manifest: manifest.to_path_buf(),
        package: folder_name.clone(),
        key: "capmux",
        on_path: HashMap::new(),
        diagnostics: Vec::new(),
    };
    let package = read_package(&mut reader, root, source, folder_name).ok();
    Loaded {
        package,
        diagnostics: reader.diagnostics,
    }
}

fn read_package(
    r: &mut Reader<'_>,
    root: &Path,
    source: Source,
    folder_name: String,
) -> Parsed<Package> {
    let text = read_text(&r.manifest).map_err(|err| r.error(err))?;
    let json: Value = serde_json::from_str(&text).map_err(|err| {
        let line = err.line();
        r.diagnostics.push(
            Diagnostic::error(&r.manifest, format!("invalid JSON: {err}"))
                .at_line(line)
                .in_package(r.package.clone()),
        );
        Bad
    })?;
    let Value::Object(top) = json else {
        return Err(r.error(format!("expected a JSON object, found {}", kind(&json))));
    };

    let id = match top.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
        Some(other) if !other.is_string() => {
            r.warn(format!(
                "package.json \"name\" is {}, not a string; the folder name `{folder_name}` is used as the package id",
                kind(other)
            ));
            folder_name
        }
        _ => {
            r.warn(format!("package.json has no \"name\"; the folder name `{folder_name}` is used as the package id"));
            folder_name
        }
    };
    r.package = id.clone();

    let (format, manifest) = match (top.get("capmux"), top.get("aionui")) {
        (Some(capmux), aionui) => {
            if aionui.is_some() {
                r.warn("both \"capmux\" and \"aionui\" are present; \"aionui\" is ignored");
            }
            (Format::Native, capmux)
        }
        (None, Some(aionui)) => (Format::AionuiRfc, aionui),
        (None, None) => {
            return Err(r.error(
                "package.json has no \"capmux\" object: add one to make this folder a capmux package",
            ));
        }
    };
    let key = if format == Format::Native {
        "capmux"
    } else {
        "aionui"
    };
    r.key = key;
    let Value::Object(m) = manifest else {
        return Err(r.error(format!(
            "\"{key}\": expected an object, found {}",
            kind(manifest)
        )));
    };
    r.unknown_keys(m, CAPMUX_KEYS, key);

    if format == Format::Native {
        match m.get("manifestVersion") {
            None => r.info(format!(
                "capmux.manifestVersion is missing; version {MANIFEST_VERSION} is assumed"
            )),
            Some(Value::Number(n)) if n.as_u64() == Some(MANIFEST_VERSION) => {}
            Some(other) => {
                return Err(r.error(format!(
                    "capmux.manifestVersion {other} is not supported: this capmux reads version {MANIFEST_VERSION}"
                )));
            }
        }
    }
    if let Some(min) = r.opt_str(m, "minHostVersion", key)? {
        let ours = env!("CARGO_PKG_VERSION");
        match (parse_version(&min), parse_version(ours)) {
            (Some(needed), Some(have)) if needed > have => {
                return Err(r.error(format!(
                    "{key}.minHostVersion: the package needs capmux {min} or newer; this is {ours}"
                )));
            }
            (None, _) => r.warn(format!(
                "{key}.minHostVersion `{min}` is not a version like 1.2.3; ignored"
            )),
            _ => {}
        }
    }
    if m.contains_key("agents") {
        r.info(format!(
            "{key}.agents: assistants of the AionUi RFC are not served over MCP"
        ));
    }

    let permissions = read_permissions(r, m, key)?;
    let priority = r.opt_int(m, "priority", key)?.unwrap_or(DEFAULT_PRIORITY);
    let display_name = r.opt_str(m, "displayName", key)?;
    let description = match r.opt_str(m, "description", key)? {
        Some(d) => Some(d),
        None => top
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    let category = r.opt_str(m, "category", key)?;
    let version = top
        .get("version")
        .and_then(Value::as_str)
        .map(str::to_owned);

    // Item lists: an error inside one item drops that item; a list of the wrong type drops
    // the list. Neither stops the package.
    let settings = read_settings(r, m).unwrap_or_default();
    let mut system_prompts = read_system_prompts(r, m).unwrap_or_default();
    if format == Format::AionuiRfc {
        read_rules(r, &mut system_prompts);
    }
    let prompts = read_prompts(r, m).unwrap_or_default();
    let tools = read_tools(r, m, format, &permissions).unwrap_or_default();
    let skills = read_skills(r, m).unwrap_or_default();
    let mcp_servers = read_mcp_servers(r, m, format).unwrap_or_default();
    let hooks = read_hooks(r, m).unwrap_or_default();

    Ok(Package {
        id,
        version,
        display_name,
        description,
        category,
        source,
        root: root.to_path_buf(),
        format,
        also: Vec::new(),
        priority,
        permissions,
        settings,
        system_prompts,
        skills,
        prompts,
        tools,
        mcp_servers,
        hooks,
        env: BTreeMap::new(),
    })
}

fn read_permissions(
    r: &mut Reader<'_>,
    m: &Map<String, Value>,
    key: &str,
) -> Parsed<BTreeSet<Permission>> {
    let Some(value) = m.get("permissions") else {
        return Ok(BTreeSet::new());
    };
    let at = format!("{key}.permissions");
    let mut out = BTreeSet::new();
    for raw in r.str_list(value, &at)? {
        if let Some(permission) = Permission::parse(&raw) {
            out.insert(permission);
        } else if Permission::IGNORED.contains(&raw.as_str()) {
            r.info(format!(
                "{at}: `{raw}` concerns a desktop UI and is ignored"
            ));
        } else {
            // An unknown permission cannot be granted or enforced, so the package does not
            // load: quietly ignoring it would run the package with rights nobody reviewed.
            let known: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
            return Err(r.error(format!(
                "{at}: unknown permission `{raw}`; known permissions are {}",
                known.join(", ")
            )));
        }
    }
    Ok(out)
}

fn read_settings(r: &mut Reader<'_>, m: &Map<String, Value>) -> Parsed<BTreeMap<String, Setting>> {
    let Some(value) = m.get("settings") else {
        return Ok(BTreeMap::new());
    };
    let Value::Object(obj) = value else {
        return Err(r.error(format!(
            "{}.settings: expected an object, found {}",
            r.key,
            kind(value)
        )));
    };
    let mut out = BTreeMap::new();
    for (key, spec) in obj {
        let at = format!("{}.settings.{key}", r.key);
        if !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            || key.is_empty()
        {
            r.error(format!("{at}: setting keys may only use A-Z a-z 0-9 _ -"));
            continue;
        }
        if let Ok(setting) = read_setting(r, spec, &at) {
            out.insert(key.clone(), setting);
        }
    }
    Ok(out)
}

fn read_setting(r: &mut Reader<'_>, spec: &Value, at: &str) -> Parsed<Setting> {
    let Value::Object(s) = spec else {
        return Err(r.error(format!("{at}: expected an object, found {}", kind(spec))));
    };
    r.unknown_keys(
        s,
        &[
            "type",
            "label",
            "description",
            "default",
            "secret",
            "required",
            "options",
            "validation",
        ],
        at,
    );
    let kind = match r.opt_str(s, "type", at)?.as_deref() {
        None => {
            r.warn(format!("{at}: no `type`; treated as a string"));
            SettingType::String
        }
        Some("string") => SettingType::String,
        Some("number") => SettingType::Number,
        Some("boolean") => SettingType::Boolean,
        Some("select") => SettingType::Select,
        Some("multiselect") => SettingType::Multiselect,
        Some(other) => {
            return Err(r.error(format!(
                "{at}.type: `{other}` is not one of string, number, boolean, select, multiselect"
            )));
        }
    };
    let options = match s.get("options") {
        Some(Value::Array(options)) => options
            .iter()
            .map(|o| o.get("value").cloned().unwrap_or_else(|| o.clone()))
            .collect(),
        _ => Vec::new(),
    };
    let mut default = s.get("default").cloned().filter(|d| !d.is_null());
    if let Some(value) = &default
        && !kind.accepts(value, &options)
    {
        r.warn(format!(
            "{at}.default: {value} does not fit a {} setting{}; the setting has no default",
            kind.as_str(),
            if options.is_empty() {
                ""
            } else {
                " and its options"
            }
        ));
        default = None;
    }
    Ok(Setting {
        kind,
        label: r.opt_str(s, "label", at)?,
        description: r.opt_str(s, "description", at)?,
        default,
        secret: r.opt_bool(s, "secret", at)?.unwrap_or(false),
        required: r.opt_bool(s, "required", at)?.unwrap_or(false),
        options,
    })
}

fn read_system_prompts(r: &mut Reader<'_>, m: &Map<String, Value>) -> Parsed<Vec<SystemPrompt>> {
    let items = r.items(m, "systemPrompts")?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{}.systemPrompts[{i}]", r.key);
        if let Ok(prompt) = read_system_prompt(r, item, &at) {
            out.push(prompt);
        }
    }
    Ok(out)
}

fn read_system_prompt(r: &mut Reader<'_>, item: &Value, at: &str) -> Parsed<SystemPrompt> {
    let Value::Object(obj) = item else {
        return Err(r.error(format!("{at}: expected an object, found {}", kind(item))));
    };
    r.unknown_keys(obj, &["content", "file", "priority", "providers"], at);
    let (content, file) = match (r.opt_str(obj, "content", at)?, r.opt_str(obj, "file", at)?) {
        (Some(_), Some(_)) => {
            return Err(r.error(format!("{at}: give `content` or `file`, not both")));
        }
        (None, None) => return Err(r.error(format!("{at}: needs `content` or `file`"))),
        (Some(content), None) => (content, None),
        (None, Some(rel)) => (r.file(&rel, at)?.1, Some(PathBuf::from(rel))),
    };
    if content.trim().is_empty() {
        r.warn(format!("{at}: the system prompt is empty"));
    }
    let providers = match obj.get("providers") {
        None | Some(Value::Null) => None,
        Some(value) => Some(r.str_list(value, &format!("{at}.providers"))?),
    };
    Ok(SystemPrompt {
        content: content.trim().to_owned(),
        priority: r.opt_int(obj, "priority", at)?.unwrap_or(DEFAULT_PRIORITY),
        providers,
        file,
    })
}

/// The AionUi RFC's `rules/*.md` (its assistants' static rule files), in name order, as
/// system prompts; one a `systemPrompts` entry names already is not added twice.
fn read_rules(r: &mut Reader<'_>, prompts: &mut Vec<SystemPrompt>) {
    let Ok(entries) = std::fs::read_dir(r.root.join("rules")) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    for path in files {
        let rel = path.strip_prefix(r.root).unwrap_or(&path).to_path_buf();
        let same = |f: &PathBuf| r.root.join(f).canonicalize().ok() == path.canonicalize().ok();
        if prompts.iter().any(|p| p.file.as_ref().is_some_and(same)) {
            continue;
        }
        match read_text(&path) {
            Ok(content) => prompts.push(SystemPrompt {
                content,
                priority: DEFAULT_PRIORITY,
                providers: None,
                file: Some(rel),
            }),
            Err(err) => {
                r.push(Severity::Error, &path, err);
            }
        }
    }
}

fn read_prompts(r: &mut Reader<'_>, m: &Map<String, Value>) -> Parsed<Vec<Prompt>> {
    let items = r.items(m, "prompts")?;
    let mut out: Vec<Prompt> = Vec::new();
    let mut first_at: BTreeMap<String, String> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{}.prompts[{i}]", r.key);
        let Ok(prompt) = read_prompt(r, item, &at) else {
            continue;
        };
        if let Some(first) = first_at.get(&prompt.name) {
            r.error(format!(
                "{at}: duplicate prompt name `{}` (first at {first}); this one is not loaded",
                prompt.name
            ));
            continue;
        }
        first_at.insert(prompt.name.clone(), at);
        out.push(prompt);
    }
    Ok(out)
}

fn read_prompt(r: &mut Reader<'_>, item: &Value, at: &str) -> Parsed<Prompt> {
    let Value::Object(obj) = item else {
        return Err(r.error(format!("{at}: expected an object, found {}", kind(item))));
    };
    r.unknown_keys(
        obj,
        &[
            "name",
            "title",
            "description",
            "file",
            "content",
            "arguments",
        ],
        at,
    );
    let raw_name = r.req_str(obj, "name", at)?;
    let name = r.item_name(&raw_name, "prompt", at)?;
    let (template, file) = match (r.opt_str(obj, "content", at)?, r.opt_str(obj, "file", at)?) {
        (Some(_), Some(_)) => {
            return Err(r.error(format!("{at}: give `content` or `file`, not both")));
        }
        (None, None) => return Err(r.error(format!("{at}: needs `file` (or inline `content`)"))),
        (Some(content), None) => (content, r.manifest.to_path_buf()),
        (None, Some(rel)) => {
            let (path, text) = r.file(&rel, at)?;
            (text, path)
        }
    };
    let mut arguments: Vec<PromptArgument> = Vec::new();
    if let Some(value) = obj.get("arguments") {
        let Value::Array(args) = value else {
            return Err(r.error(format!(
                "{at}.arguments: expected an array, found {}",
                kind(value)
            )));
        };
        for (j, arg) in args.iter().enumerate() {
            let arg_at = format!("{at}.arguments[{j}]");
            let Value::Object(a) = arg else {
                return Err(r.error(format!("{arg_at}: expected an object, found {}", kind(arg))));
            };
            r.unknown_keys(a, &["name", "description", "required"], &arg_at);
            let name = r.req_str(a, "name", &arg_at)?;
            if arguments.iter().any(|existing| existing.name == name) {
                return Err(r.error(format!("{arg_at}: duplicate argument `{name}`")));
            }
            arguments.push(PromptArgument {
                name,
                description: r.opt_str(a, "description", &arg_at)?,
                required: r.opt_bool(a, "required", &arg_at)?.unwrap_or(false),
            });
        }
    }
    for placeholder in placeholders(&template) {
        if !arguments.iter().any(|a| a.name == placeholder) {
            r.push(
                Severity::Warning,
                &file,
                format!("prompt `{name}` uses `{{{{{placeholder}}}}}` but declares no argument `{placeholder}`; it stays as written"),
            );
        }
    }
    Ok(Prompt {
        name,
        title: r.opt_str(obj, "title", at)?,
        description: r.opt_str(obj, "description", at)?,
        arguments,
        template,
        syntax: super::Syntax::Placeholders,
        inline: false,
    })
}

/// The `{{name}}` placeholders of a template, in order, without duplicates.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !out.iter().any(|n| n == name)
        {
            out.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    out
}

fn read_tools(
    r: &mut Reader<'_>,
    m: &Map<String, Value>,
    format: Format,
    permissions: &BTreeSet<Permission>,
) -> Parsed<Vec<Tool>> {
    let items = r.items(m, "tools")?;
    let mut out: Vec<Tool> = Vec::new();
    let mut first_at: BTreeMap<String, String> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{}.tools[{i}]", r.key);
        let Ok(tool) = read_tool(r, item, &at, format) else {
            continue;
        };
        if let Some(first) = first_at.get(&tool.name) {
            r.error(format!(
                "{at}: duplicate tool name `{}` (first at {first}); this one is not loaded",
                tool.name
            ));
            continue;
        }
        first_at.insert(tool.name.clone(), at);
        out.push(tool);
    }
    if !out.is_empty() && !permissions.contains(&Permission::ShellExecute) {
        r.warn(format!(
            "the package has command tools but does not declare the `shell:execute` permission; calls to {} will be refused",
            out.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(out)
}

fn read_tool(r: &mut Reader<'_>, item: &Value, at: &str, format: Format) -> Parsed<Tool> {
    let Value::Object(obj) = item else {
        return Err(r.error(format!("{at}: expected an object, found {}", kind(item))));
    };
    r.unknown_keys(
        obj,
        &[
            "name",
            "title",
            "description",
            "inputSchema",
            "command",
            "timeoutMs",
            "annotations",
            "providers",
        ],
        at,
    );
    let raw_name = r.req_str(obj, "name", at)?;
    let name = r.item_name(&raw_name, "tool", at)?;
    let argv = match obj.get("command") {
        Some(Value::String(s)) => {
            return Err(r.error(format!(
                "{at}.command: must be an argv array such as [\"python3\", \"tools/{name}.py\"], not the string `{s}`"
            )));
        }
        Some(value) => r.str_list(value, &format!("{at}.command"))?,
        None if format == Format::AionuiRfc => {
            // The RFC declares tools for display and implements them in JavaScript.
            r.warn(format!("{at}: tool `{name}` has no `command` (its handler is JavaScript), so capmux cannot run it; not served"));
            return Err(Bad);
        }
        None => return Err(r.error(format!("{at}: tool `{name}` needs a `command` to run"))),
    };
    if argv.is_empty() || argv[0].trim().is_empty() {
        return Err(r.error(format!("{at}.command: must name a program")));
    }
    check_command_files(r, &argv, &format!("{at}.command"));
    let description = r.opt_str(obj, "description", at)?;
    if description.is_none() {
        r.warn(format!(
            "{at}: tool `{name}` has no description; models choose tools by their descriptions"
        ));
    }
    let schema = match obj.get("inputSchema") {
        None | Some(Value::Null) => {
            let mut empty = Map::new();
            empty.insert("type".into(), "object".into());
            empty.insert("additionalProperties".into(), false.into());
            empty
        }
        Some(Value::Object(schema)) => schema.clone(),
        Some(other) => {
            return Err(r.error(format!(
                "{at}.inputSchema: expected a JSON Schema object, found {}",
                kind(other)
            )));
        }
    };
    if schema.get("type") != Some(&Value::String("object".into())) {
        return Err(r.error(format!(
            "{at}.inputSchema: MCP tools take an object; the schema needs \"type\": \"object\""
        )));
    }
    let validator = jsonschema::validator_for(&Value::Object(schema.clone())).map_err(|err| {
        let place = err.instance_path().to_string();
        let place = if place.is_empty() {
            String::new()
        } else {
            format!(" at {place}")
        };
        r.error(format!(
            "{at}.inputSchema: not a valid JSON Schema{place}: {err}"
        ))
    })?;
    let timeout_ms = match r.opt_int(obj, "timeoutMs", at)? {
        None => DEFAULT_TIMEOUT_MS,
        Some(ms) if ms <= 0 => return Err(r.error(format!("{at}.timeoutMs: must be positive"))),
        Some(ms) if ms as u64 > MAX_TIMEOUT_MS => {
            r.warn(format!(
                "{at}.timeoutMs: {ms} is over the maximum; {MAX_TIMEOUT_MS} is used"
            ));
            MAX_TIMEOUT_MS
        }
        Some(ms) => ms as u64,
    };
    let annotations = match obj.get("annotations") {
        None | Some(Value::Null) => None,
        Some(value @ Value::Object(_)) => Some(value.clone()),
        Some(other) => {
            return Err(r.error(format!(
                "{at}.annotations: expected an object, found {}",
                kind(other)
            )));
        }
    };
    Ok(Tool {
        name,
        title: r.opt_str(obj, "title", at)?,
        description,
        input_schema: Arc::new(schema),
        annotations,
        handler: ToolHandler::Command { argv, timeout_ms },
        validator: Arc::new(validator),
    })
}

/// Warns about a command that cannot run here: a program or script path missing from the
/// package, or a program not on `PATH`. Warnings, not errors: the host may differ.
fn check_command_files(r: &mut Reader<'_>, argv: &[String], at: &str) {
    const SCRIPTS: [&str; 9] = [
        ".py", ".js", ".mjs", ".cjs", ".ts", ".sh", ".rb", ".pl", ".php",
    ];
    for (i, arg) in argv.iter().enumerate() {
        if arg.contains("${") || arg.starts_with('-') || Path::new(arg).is_absolute() {
            continue;
        }
        let looks_like_file =
            arg.contains('/') || (i > 0 && SCRIPTS.iter().any(|ext| arg.ends_with(ext)));
        if looks_like_file {
            if resolve(r.root, arg).is_err() {
                r.warn(format!("{at}[{i}]: `{arg}` does not exist in the package"));
            }
        } else if i == 0
            && !*r
                .on_path
                .entry(arg.clone())
                .or_insert_with(|| which::which(arg).is_ok())
        {
            r.warn(format!(
                "{at}[0]: `{arg}` is not on PATH here; the tool fails until it is installed"
            ));
        }
    }
}

/// The package's skills: its `skills` folder or list (a `skills/` folder when the key is
/// absent), plus a SKILL.md at the package root.
fn read_skills(r: &mut Reader<'_>, m: &Map<String, Value>) -> Parsed<Vec<Skill>> {
    let package = r.package.clone();
    let mut skills = match m.get("skills") {
        None | Some(Value::Null) => {
            let implicit = r.root.join("skills");
            if implicit.is_dir() {
                skill::load_collection(&implicit, &package, &mut r.diagnostics)
            } else {
                Vec::new()
            }
        }
        Some(Value::String(rel)) => {
            let path =
                resolve(r.root, rel).map_err(|err| r.error(format!("{}.skills: {err}", r.key)))?;
            if !path.is_dir() {
                return Err(r.error(format!("{}.skills: `{rel}` is not a folder", r.key)));
            }
            skill::load_collection(&path, &package, &mut r.diagnostics)
        }
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let at = format!("{}.skills[{i}]", r.key);
                if let Ok(Some(loaded)) = read_skill_ref(r, item, &at) {
                    out.push(loaded);
                }
            }
            out
        }
        Some(other) => {
            return Err(r.error(format!(
                "{}.skills: expected a folder path or an array, found {}",
                r.key,
                kind(other)
            )));
        }
    };
    if skill::find_entry(r.root).is_some()
        && let Some(root_skill) = skill::load_skipping(
            r.root,
            &[MANIFEST, "node_modules", "skills", "package-lock.json"],
            &package,
            &mut r.diagnostics,
        )
    {
        skills.push(root_skill);
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    skills.retain(|s| {
        let fresh = seen.insert(s.name.clone());
        if !fresh {
            r.diagnostics.push(
                Diagnostic::error(
                    &s.dir,
                    format!("duplicate skill name `{}`; this one is not loaded", s.name),
                )
                .in_package(package.clone()),
            );
        }
        fresh
    });
    Ok(skills)
}

/// One entry of a `skills` list: `{name, description?, path?}`; without a path the skill is
/// `skills/<name>/`, as in the AionUi RFC.
fn read_skill_ref(r: &mut Reader<'_>, item: &Value, at: &str) -> Parsed<Option<Skill>> {
    let Value::Object(obj) = item else {
        return Err(r.error(format!("{at}: expected an object, found {}", kind(item))));
    };
    r.unknown_keys(
        obj,
        &["name", "description", "path", "body", "resources"],
        at,
    );
    let name = r.req_str(obj, "name", at)?;
    if obj.contains_key("body") {
        r.warn(format!("{at}.body: inline skill bodies are JavaScript-side in the AionUi RFC and not served; put the skill in skills/{name}/SKILL.md"));
    }
    let rel = r
        .opt_str(obj, "path", at)?
        .unwrap_or_else(|| format!("skills/{name}"));
    let path = resolve(r.root, &rel).map_err(|err| r.error(format!("{at}.path: {err}")))?;
    let dir = if path.is_file() {
        path.parent().map(Path::to_path_buf).unwrap_or(path)
    } else {
        path
    };
    let package = r.package.clone();
    Ok(skill::load(&dir, &package, &mut r.diagnostics))
}

fn read_mcp_servers(
    r: &mut Reader<'_>,
    m: &Map<String, Value>,
    format: Format,
) -> Parsed<Vec<McpServer>> {
    let items = r.items(m, "mcpServers")?;
    let mut out: Vec<McpServer> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{}.mcpServers[{i}]", r.key);
        let Ok(server) = read_mcp_server(r, item, &at, format) else {
            continue;
        };
        if out.iter().any(|s| s.name == server.name) {
            r.error(format!(
                "{at}: duplicate server name `{}`; this one is not loaded",
                server.name
            ));
            continue;
        }
        out.push(server);
    }
    Ok(out)
}

fn read_mcp_server(
    r: &mut Reader<'_>,
    item: &Value,
    at: &str,
    format: Format,
) -> Parsed<McpServer> {
    let Value::Object(obj) = item else {
        return Err(r.error(format!("{at}: expected an object, found {}", kind(item))));
    };
    r.unknown_keys(
        obj,
        &[
            "name",
            "description",
            "transport",
            "lazy",
            "timeout",
            "tools",
            "env",
            "bundled",
        ],
        at,
    );
    let raw_name = r.req_str(obj, "name", at)?;
    let name = r.item_name(&raw_name, "server", at)?;
    let t_at = format!("{at}.transport");
    let transport = match obj.get("transport") {
        Some(Value::Object(t)) => {
            r.unknown_keys(
                t,
                &["type", "command", "args", "env", "cwd", "url", "headers"],
                &t_at,
            );
            read_transport(r, t, &t_at)?
        }
        Some(Value::String(_)) if format == Format::AionuiRfc => {
            r.warn(format!("{at}: server `{name}` is configured in JavaScript (transport is only a label); not served"));
            return Err(Bad);
        }
        Some(other) => {
            return Err(r.error(format!("{t_at}: expected an object, found {}", kind(other))));
        }
        None => return Err(r.error(format!("{at}: `transport` is required"))),
    };
    Ok(McpServer {
        name,
        description: r.opt_str(obj, "description", at)?,
        transport,
        lazy: r.opt_bool(obj, "lazy", at)?.unwrap_or(false),
        timeout_ms: read_server_timeout(r, obj, at)?,
        include_tools: None,
        exclude_tools: Vec::new(),
    })
}

/// A server's `timeout` in milliseconds: its requests' idle timeout.
fn read_server_timeout(
    r: &mut Reader<'_>,
    obj: &Map<String, Value>,
    at: &str,
) -> Parsed<Option<u64>> {
    match obj.get("timeout") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|ms| ms > 0) => Ok(n.as_u64()),
        Some(other) => Err(r.error(format!(
            "{at}.timeout: expected a positive number of milliseconds, found {other}"
        ))),
    }
}

/// A transport object: `command` (stdio) or `url` (`http`, else `sse` when `type` says so).
/// The native `transport` object and every servers config file share this shape.
pub(crate) fn read_transport(
    r: &mut Reader<'_>,
    t: &Map<String, Value>,
    t_at: &str,
) -> Parsed<Transport> {
    let kind_name = r.opt_str(t, "type", t_at)?;
    let kind_name = kind_name
        .as_deref()
        .unwrap_or(if t.contains_key("command") {
            "stdio"
        } else {
            "http"
        });
    let headers = match t.get("headers") {
        Some(h) => r.str_map(h, &format!("{t_at}.headers"))?,
        None => BTreeMap::new(),
    };
    Ok(match kind_name {
        "stdio" => Transport::Stdio {
            command: r.req_str(t, "command", t_at)?,
            args: match t.get("args") {
                Some(a) => r.str_list(a, &format!("{t_at}.args"))?,
                None => Vec::new(),
            },
            env: match t.get("env") {
                Some(e) => r.str_map(e, &format!("{t_at}.env"))?,
                None => BTreeMap::new(),
            },
            cwd: r.opt_str(t, "cwd", t_at)?,
        },
        "http" | "streamable_http" | "streamable-http" | "streamableHttp" => Transport::Http {
            url: r.req_str(t, "url", t_at)?,
            headers,
        },
        "sse" => Transport::Sse {
            url: r.req_str(t, "url", t_at)?,
            headers,
        },
        other => {
            return Err(r.error(format!(
                "{t_at}.type: `{other}` is not one of stdio, http, sse"
            )));
        }
    })
}

/// Keys other clients write into a servers config that mean nothing to an MCP server.
const FOREIGN_SERVER_KEYS: &[&str] = &[
    "autoApprove",
    "alwaysAllow",
    "trust",
    "envFile",
    "oauth",
    "headersHelper",
    "authProviderType",
    "targetAudience",
    "targetServiceAccount",
    "tcp",
    "transportType",
    "networkTimeout",
];

/// Whether `file` is a servers config: a JSON file whose object holds `mcpServers` (Claude
/// Desktop, Cursor, Claude Code) or `servers` (VS Code).
pub fn detect_servers(file: &Path) -> bool {
    if !file.is_file() || file.extension().is_none_or(|e| e != "json") {
        return false;
    }
    let Ok(text) = read_text(file) else {
        return false;
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(top)) => {
            top.contains_key("mcpServers") || top.contains_key("servers") || is_flat(&top)
        }
        _ => false,
    }
}

/// The flat shape of a Claude Code plugin's `.mcp.json`: server names at the top level.
fn is_flat(top: &Map<String, Value>) -> bool {
    !top.is_empty()
        && top.values().all(|v| {
            v.as_object()
                .is_some_and(|o| o.contains_key("command") || o.contains_key("url"))
        })
}

/// The id of a servers config file: `<folder>/<file>` (`.vscode/mcp.json`), so files of the
/// same name in different folders are different packages.
pub(crate) fn servers_id(file: &Path) -> String {
    let root = file.parent().unwrap_or(Path::new("."));
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    match (root.file_name().and(name(root)), name(file)) {
        (Some(folder), Some(file)) => format!("{folder}/{file}"),
        (None, Some(file)) => file,
        _ => "servers".into(),
    }
}

/// A servers config file as a package of child servers: its id is `<folder>/<file>`, each
/// server is served under its own name as namespace, and it holds `mcp:server` (the file is
/// the user's own configuration).
pub fn load_servers(file: &Path, source: Source) -> Loaded {
    let root = file.parent().unwrap_or(Path::new("."));
    let id = servers_id(file);
    let mut r = Reader {
        root,
        manifest: file.to_path_buf(),
        package: id.clone(),
        key: "mcpServers",
        on_path: HashMap::new(),
        diagnostics: Vec::new(),
    };
    let package = read_servers(&mut r, id, source).ok();
    Loaded {
        package,
        diagnostics: r.diagnostics,
    }
}

fn read_servers(r: &mut Reader<'_>, id: String, source: Source) -> Parsed<Package> {
    let text = read_text(&r.manifest).map_err(|err| r.error(err))?;
    let top: Map<String, Value> = match serde_json::from_str(&text) {
        Ok(Value::Object(top)) => top,
        Ok(other) => return Err(r.error(format!("expected a JSON object, found {}", kind(&other)))),
        Err(err) => {
            let line = err.line();
            r.diagnostics.push(
                Diagnostic::error(&r.manifest, format!("invalid JSON: {err}"))
                    .at_line(line)
                    .in_package(r.package.clone()),
            );
            return Err(Bad);
        }
    };
    let servers = match (top.get("mcpServers"), top.get("servers")) {
        (Some(servers), _) => servers,
        (None, Some(servers)) => {
            r.key = "servers";
            servers
        }
        (None, None) => {
            r.key = "";
            &Value::Object(top.clone())
        }
    };
    let Value::Object(servers) = servers else {
        return Err(r.error(format!(
            "{}: expected an object of servers, found {}",
            r.key,
            kind(servers)
        )));
    };
    let prefix = r.key;
    let out = read_server_entries(r, servers, prefix);
    Ok(Package {
        permissions: BTreeSet::from([Permission::McpServer]),
        mcp_servers: out,
        ..Package::empty(id, source, r.root, Format::Servers)
    })
}

/// The entries of a servers object (`{"name": {command…} | {url…}}`), the shape Claude
/// Desktop, Claude Code, Cursor, VS Code and Gemini CLI share; `prefix` starts each JSON
/// path. A bad entry is an error and its siblings load.
pub(crate) fn read_server_entries(
    r: &mut Reader<'_>,
    servers: &Map<String, Value>,
    prefix: &str,
) -> Vec<McpServer> {
    let mut out: Vec<McpServer> = Vec::new();
    for (raw_name, entry) in servers.iter().take(MAX_ITEMS) {
        let at = if prefix.is_empty() {
            raw_name.clone()
        } else {
            format!("{prefix}.{raw_name}")
        };
        let Value::Object(obj) = entry else {
            r.error(format!("{at}: expected an object, found {}", kind(entry)));
            continue;
        };
        if r.opt_bool(obj, "disabled", &at).ok().flatten() == Some(true)
            || r.opt_bool(obj, "enabled", &at).ok().flatten() == Some(false)
        {
            r.info(format!("{at}: disabled; not started"));
            continue;
        }
        let mut known = vec![
            "type",
            "command",
            "args",
            "env",
            "cwd",
            "url",
            "httpUrl",
            "headers",
            "timeout",
            "lazy",
            "disabled",
            "enabled",
            "description",
            "title",
            "includeTools",
            "excludeTools",
            "disabledTools",
        ];
        known.extend_from_slice(FOREIGN_SERVER_KEYS);
        r.unknown_keys(obj, &known, &at);
        for key in FOREIGN_SERVER_KEYS.iter().filter(|k| obj.contains_key(**k)) {
            r.info(format!(
                "{at}.{key}: a setting of another client; capmux ignores it"
            ));
        }
        let Ok(name) = r.item_name(raw_name, "server", &at) else {
            continue;
        };
        let transport = match obj.get("httpUrl") {
            // Gemini CLI's streamable HTTP URL.
            Some(Value::String(url)) => Ok(Transport::Http {
                url: url.clone(),
                headers: match obj.get("headers") {
                    Some(h) => r.str_map(h, &format!("{at}.headers")).unwrap_or_default(),
                    None => BTreeMap::new(),
                },
            }),
            _ => read_transport(r, obj, &at),
        };
        let Ok(transport) = transport else {
            continue;
        };
        let list = |r: &mut Reader<'_>, key: &str| match obj.get(key) {
            Some(v) => r.str_list(v, &format!("{at}.{key}")).map(Some),
            None => Ok(None),
        };
        let (
            Ok(description),
            Ok(title),
            Ok(lazy),
            Ok(timeout_ms),
            Ok(include),
            Ok(exclude),
            Ok(disabled),
        ) = (
            r.opt_str(obj, "description", &at),
            r.opt_str(obj, "title", &at),
            r.opt_bool(obj, "lazy", &at),
            read_server_timeout(r, obj, &at),
            list(r, "includeTools"),
            list(r, "excludeTools"),
            list(r, "disabledTools"),
        )
        else {
            continue;
        };
        if out.iter().any(|s| s.name == name) {
            r.error(format!(
                "{at}: server name `{name}` is taken by another entry once made a valid name; this one is not loaded"
            ));
            continue;
        }
        out.push(McpServer {
            name,
            description: description.or(title),
            transport,
            lazy: lazy.unwrap_or(false),
            timeout_ms,
            include_tools: include,
            exclude_tools: exclude.into_iter().chain(disabled).flatten().collect(),
        });
    }
    if servers.len() > MAX_ITEMS {
        r.error(format!(
            "{prefix}: more than {MAX_ITEMS} servers; the rest are not loaded"
        ));
    }
    out
}

fn read_hooks(r: &mut Reader<'_>, m: &Map<String, Value>) -> Parsed<Vec<Hook>> {
    let items = r.items(m, "hooks")?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{}.hooks[{i}]", r.key);
        if let Ok(hook) = read_hook(r, item, &at) {
            out.push(hook);
        }
    }
    Ok(out)
}

fn read_hook(r: &mut Reader<'_>, item: &Value, at: &str) -> Parsed<Hook> {
    let Value::Object(obj) = item else {
        return Err(r.error(format!("{at}: expected an object, found {}", kind(item))));
    };
    r.unknown_keys(
        obj,
        &[
            "event",
            "matcher",
            "command",
            "url",
            "timeoutMs",
            "failOpen",
        ],
        at,
    );
    let event_name = r.req_str(obj, "event", at)?;
    let Some((_, event)) = HookEvent::ALL.iter().find(|(n, _)| *n == event_name) else {
        let known: Vec<&str> = HookEvent::ALL.iter().map(|(n, _)| *n).collect();
        return Err(r.error(format!(
            "{at}.event: `{event_name}` is not one of {}",
            known.join(", ")
        )));
    };
    let handler = match (obj.get("command"), r.opt_str(obj, "url", at)?) {
        (Some(_), Some(_)) => {
            return Err(r.error(format!("{at}: give `command` or `url`, not both")));
        }
        (Some(value), None) => {
            let argv = r.str_list(value, &format!("{at}.command"))?;
            if argv.is_empty() {
                return Err(r.error(format!("{at}.command: must name a program")));
            }
            HookHandler::Command { argv }
        }
        (None, Some(url)) => HookHandler::Http { url },
        (None, None) => return Err(r.error(format!("{at}: needs `command` or `url`"))),
    };
    let timeout_ms = match r.opt_int(obj, "timeoutMs", at)? {
        Some(ms) if ms <= 0 => return Err(r.error(format!("{at}.timeoutMs: must be positive"))),
        other => other.map(|ms| ms as u64),
    };
    Ok(Hook {
        event: *event,
        matcher: r.opt_str(obj, "matcher", at)?,
        handler,
        timeout_ms,
        fail_open: r.opt_bool(obj, "failOpen", at)?,
    })
}

/// `1.2.3` as numbers; pre-release and build suffixes are ignored.
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim().trim_start_matches('v').split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
        parts.next().flatten().unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::read::closest;
    use super::*;

    #[test]
    fn placeholders_are_found_once_each() {
        assert_eq!(
            placeholders("{{a}} {{ b }} {{a}} {{not valid}} {{"),
            vec!["a", "b"]
        );
    }

    #[test]
    fn typos_of_known_keys_get_a_hint() {
        assert_eq!(closest("systemPrompt", CAPMUX_KEYS), Some("systemPrompts"));
        assert_eq!(closest("tool", CAPMUX_KEYS), Some("tools"));
        assert_eq!(closest("banana", CAPMUX_KEYS), None);
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(parse_version("0.10.0") > parse_version("0.9.5"));
        assert_eq!(parse_version("v1.2"), Some((1, 2, 0)));
        assert_eq!(parse_version("x"), None);
    }
}
