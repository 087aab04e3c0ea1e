//! Tests: the loader, as a package author meets it. Fixture packages under
//! `tests/fixtures/loader/` are read through `package::load`, `discover` and `Pool::build`;
//! each test asserts what loaded and the exact diagnostics (severity, file, line, message) for
//! what did not, and that a broken package never keeps a good one beside it from loading.
//! Fixtures that need a symlink or a file over 1 MiB are copied to a temporary folder and
//! completed at run time, so no such file is committed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use capmux::discover::{Root, discover};
use capmux::names::{DEFAULT_BUDGET, QualifiedName};
use capmux::package::native::DEFAULT_TIMEOUT_MS;
use capmux::package::{
    self, Format, HookEvent, HookHandler, MAX_FILE_BYTES, Package, Permission, Setting,
    SettingType, Source, ToolHandler, Transport,
};
use capmux::{Config, Diagnostic, Options, Overrides, Pool, Severity};
use serde_json::json;

use crate::support;

/// The id of the `good/full` fixture.
const FULL: &str = "capmux-plugin-full";

// ---------------------------------------------------------------------------------------------
// Helpers (private: the shared `support` module belongs to another family of tests)
// ---------------------------------------------------------------------------------------------

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/loader")
        .join(rel)
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn explicit(path: &Path) -> Root {
    Root {
        path: path.to_path_buf(),
        source: Source::Explicit,
        required: true,
        id: None,
        entry: None,
    }
}

fn manifest(root: &Path) -> PathBuf {
    root.join("package.json")
}

fn error(path: impl Into<PathBuf>, package: &str, message: &str) -> Diagnostic {
    Diagnostic::error(path, message).in_package(package)
}

fn warning(path: impl Into<PathBuf>, package: &str, message: &str) -> Diagnostic {
    Diagnostic::warning(path, message).in_package(package)
}

fn info(path: impl Into<PathBuf>, package: &str, message: &str) -> Diagnostic {
    Diagnostic::info(path, message).in_package(package)
}

/// Loads one package root on its own, as `capmux check --package` does.
fn load(root: &Path) -> (Option<Package>, Vec<Diagnostic>) {
    let loaded = package::load(root, Source::Explicit, None);
    (loaded.package, loaded.diagnostics)
}

/// Loads one package root that must load, with no diagnostics at all.
fn load_clean(root: &Path) -> Package {
    let (package, diagnostics) = load(root);
    assert_eq!(diagnostics, vec![], "{}", root.display());
    package.expect("the package loads")
}

/// What `discover` gave for a broken root read beside `good/full`, with `good/full` already
/// checked to have loaded completely and taken out.
struct Beside {
    packages: Vec<Package>,
    diagnostics: Vec<Diagnostic>,
}

impl Beside {
    fn only_package(&self) -> &Package {
        assert_eq!(self.packages.len(), 1, "{:?}", self.ids());
        &self.packages[0]
    }

    fn ids(&self) -> Vec<&str> {
        self.packages.iter().map(|p| p.id.as_str()).collect()
    }
}

/// Discovers `broken` and then `good/full` in one pass, the way a user's sources are read.
fn discover_beside_full(broken: &Path) -> Beside {
    let full_root = fixture("good/full");
    let (packages, diagnostics) = discover(&[explicit(broken), explicit(&full_root)]);
    let (full, others): (Vec<Package>, Vec<Package>) =
        packages.into_iter().partition(|p| p.root == full_root);
    assert_eq!(
        full.len(),
        1,
        "good/full did not load beside {}",
        broken.display()
    );
    assert_full_package(&full[0], &full_root);
    Beside {
        packages: others,
        diagnostics,
    }
}

fn tool_names(package: &Package) -> Vec<&str> {
    package.tools.iter().map(|t| t.name.as_str()).collect()
}

fn prompt_names(package: &Package) -> Vec<&str> {
    package.prompts.iter().map(|p| p.name.as_str()).collect()
}

/// `^[A-Za-z][A-Za-z0-9_-]*$`, checked by hand.
fn is_public_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A config read from `text`, as if from `capmux.toml` at the repository root.
fn config(text: &str) -> Config {
    Config::parse(text, &repo_root().join("capmux.toml")).expect("valid config")
}

/// Every field of `good/full/package.json`, as loaded.
fn assert_full_package(package: &Package, root: &Path) {
    assert_eq!(package.id, FULL);
    assert_eq!(package.version.as_deref(), Some("2.3.4"));
    assert_eq!(package.display_name.as_deref(), Some("Full Fixture"));
    assert_eq!(package.title(), "Full Fixture");
    // No `capmux.description`: the npm description is used.
    assert_eq!(
        package.description.as_deref(),
        Some("Every field of the native manifest, used once")
    );
    assert_eq!(package.category.as_deref(), Some("testing"));
    assert_eq!(package.source, Source::Explicit);
    assert_eq!(package.root, root);
    assert_eq!(package.format, Format::Native);
    assert_eq!(package.priority, 40);
    assert_eq!(
        package.permissions,
        Permission::ALL.into_iter().collect::<BTreeSet<_>>()
    );

    // System prompts: inline (trimmed), from a file (default priority), for some providers.
    let system = &package.system_prompts;
    assert_eq!(system.len(), 3);
    assert_eq!(system[0].content, "Always answer in full sentences.");
    assert_eq!(system[0].priority, 5);
    assert_eq!(system[0].providers, None);
    assert_eq!(system[0].file, None);
    assert_eq!(system[1].content, "Prefer small, reviewable changes.");
    assert_eq!(system[1].priority, 100);
    assert_eq!(system[1].providers, None);
    assert_eq!(system[1].file, Some(PathBuf::from("prompts/rules.md")));
    assert_eq!(
        system[2].content,
        "When running as Claude, use the tools before guessing."
    );
    assert_eq!(system[2].priority, 70);
    assert_eq!(
        system[2].providers,
        Some(vec!["claude".to_owned(), "gemini".to_owned()])
    );
    assert_eq!(system[2].file, Some(PathBuf::from("prompts/claude.md")));

    let skill_names: Vec<&str> = package.skills.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skill_names, ["demo"]);
    assert_eq!(package.skills[0].files[0].path, "SKILL.md");
    assert!(package.skills[0].files[0].digest.starts_with("sha256:"));

    // Prompts: one from a file with required, optional and default arguments; one inline.
    assert_eq!(prompt_names(package), ["review", "greet"]);
    let review = &package.prompts[0];
    assert_eq!(
        review.description.as_deref(),
        Some("Review a diff with an optional focus")
    );
    assert_eq!(
        review.template,
        "Review this diff:\n\n{{diff}}\n\nFocus on: {{focus}}\nTone: {{ tone }}\n"
    );
    let arguments: Vec<(&str, Option<&str>, bool)> = review
        .arguments
        .iter()
        .map(|a| (a.name.as_str(), a.description.as_deref(), a.required))
        .collect();
    assert_eq!(
        arguments,
        [
            ("diff", Some("The diff to review"), true),
            ("focus", Some("What to look at first"), false),
            ("tone", None, false),
        ]
    );
    let greet = &package.prompts[1];
    assert_eq!(greet.template, "Say hello to {{name}}.");
    assert_eq!(greet.arguments.len(), 1);
    assert_eq!(greet.arguments[0].name, "name");
    assert!(greet.arguments[0].required);

    // Tools: a full declaration, and one that takes every default.
    assert_eq!(tool_names(package), ["echo", "ping"]);
    let echo = &package.tools[0];
    assert_eq!(echo.title.as_deref(), Some("Echo"));
    assert_eq!(
        echo.description.as_deref(),
        Some("Return the arguments it was given")
    );
    assert_eq!(
        echo.handler,
        ToolHandler::Command {
            argv: vec!["python3".into(), "tools/echo.py".into()],
            timeout_ms: 5000,
        }
    );
    assert!(root.join("tools/echo.py").is_file());
    assert_eq!(
        serde_json::Value::Object(echo.input_schema.as_ref().clone()),
        json!({
            "type": "object",
            "properties": { "text": { "type": "string", "minLength": 1 } },
            "required": ["text"],
            "additionalProperties": false
        })
    );
    assert_eq!(
        echo.annotations,
        Some(json!({ "readOnlyHint": true, "idempotentHint": true }))
    );
    assert!(echo.validator.is_valid(&json!({ "text": "hi" })));
    assert!(!echo.validator.is_valid(&json!({})));
    assert!(
        !echo
            .validator
            .is_valid(&json!({ "text": "hi", "extra": 1 }))
    );
    let ping = &package.tools[1];
    assert_eq!(ping.title, None);
    assert_eq!(ping.annotations, None);
    assert_eq!(
        ping.handler,
        ToolHandler::Command {
            argv: vec!["python3".into(), "tools/echo.py".into(), "--pong".into()],
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    );
    assert_eq!(
        serde_json::Value::Object(ping.input_schema.as_ref().clone()),
        json!({ "type": "object", "additionalProperties": false })
    );

    // Child MCP servers: one of each transport.
    let servers = &package.mcp_servers;
    assert_eq!(servers.len(), 3);
    assert_eq!(servers[0].name, "local");
    assert_eq!(
        servers[0].description.as_deref(),
        Some("A child server on stdio")
    );
    assert!(servers[0].lazy);
    assert_eq!(
        servers[0].transport,
        Transport::Stdio {
            command: "python3".into(),
            args: vec!["server.py".into(), "--quiet".into()],
            env: BTreeMap::from([
                ("LOG_LEVEL".to_owned(), "warn".to_owned()),
                ("TOKEN".to_owned(), "${settings.api_token}".to_owned()),
            ]),
            cwd: Some("tools".into()),
        }
    );
    assert_eq!(servers[1].name, "remote");
    assert!(!servers[1].lazy);
    assert_eq!(
        servers[1].transport,
        Transport::Http {
            url: "https://example.com/mcp".into(),
            headers: BTreeMap::from([(
                "Authorization".to_owned(),
                "Bearer ${settings.api_token}".to_owned()
            )]),
        }
    );
    assert_eq!(servers[2].name, "events");
    assert_eq!(
        servers[2].transport,
        Transport::Sse {
            url: "https://example.com/sse".into(),
            headers: BTreeMap::new(),
        }
    );

    // Hooks: a command with matcher, timeout and fail-closed; a URL that fails open.
    let hooks = &package.hooks;
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[0].event, HookEvent::BeforeToolCall);
    assert_eq!(hooks[0].matcher.as_deref(), Some("full__echo"));
    assert_eq!(
        hooks[0].handler,
        HookHandler::Command {
            argv: vec!["python3".into(), "tools/echo.py".into(), "--hook".into()],
        }
    );
    assert_eq!(hooks[0].timeout_ms, Some(2000));
    assert_eq!(hooks[0].fail_open, Some(false));
    assert_eq!(hooks[1].event, HookEvent::SessionStart);
    assert_eq!(hooks[1].matcher, None);
    assert_eq!(
        hooks[1].handler,
        HookHandler::Http {
            url: "https://example.com/hook".into()
        }
    );
    assert_eq!(hooks[1].timeout_ms, None);
    assert_eq!(hooks[1].fail_open, Some(true));

    // Settings, keyed and sorted by name.
    let setting = |kind, label: &str| Setting {
        kind,
        label: Some(label.to_owned()),
        description: None,
        default: None,
        secret: false,
        required: false,
        options: Vec::new(),
    };
    let expected = BTreeMap::from([
        (
            "api_token".to_owned(),
            Setting {
                secret: true,
                ..setting(SettingType::String, "API token")
            },
        ),
        (
            "max_results".to_owned(),
            Setting {
                default: Some(json!(20)),
                ..setting(SettingType::Number, "Max results")
            },
        ),
        (
            "mode".to_owned(),
            Setting {
                default: Some(json!("fast")),
                options: vec![json!("fast"), json!("thorough")],
                ..setting(SettingType::Select, "Mode")
            },
        ),
        (
            "verbose".to_owned(),
            Setting {
                default: Some(json!(false)),
                ..setting(SettingType::Boolean, "Verbose")
            },
        ),
        (
            "workspace".to_owned(),
            Setting {
                description: Some("The workspace to use".into()),
                required: true,
                ..setting(SettingType::String, "Workspace")
            },
        ),
    ]);
    assert_eq!(package.settings, expected);
}

// ---------------------------------------------------------------------------------------------
// Good packages
// ---------------------------------------------------------------------------------------------

#[test]
fn a_package_using_every_native_field_loads_with_no_diagnostics() {
    let root = fixture("good/full");
    let package = load_clean(&root);
    assert_full_package(&package, &root);
}

#[test]
fn an_aionui_package_loads_as_native_and_skips_what_only_javascript_can_run() {
    let root = fixture("good/aionui");
    let (package, diagnostics) = load(&root);
    let package = package.expect("the package loads");

    assert_eq!(package.format, Format::AionuiRfc);
    assert_eq!(package.id, "aionui-plugin-pdf-lite");
    assert_eq!(package.version.as_deref(), Some("1.0.0"));
    assert_eq!(package.display_name.as_deref(), Some("PDF Lite"));
    // The `aionui` description wins over the npm one.
    assert_eq!(
        package.description.as_deref(),
        Some("Read and merge PDF files")
    );
    assert_eq!(package.category.as_deref(), Some("document"));
    assert_eq!(package.priority, 100);
    assert_eq!(
        package.permissions,
        BTreeSet::from([Permission::FsRead, Permission::NetworkFetch])
    );
    let skill_names: Vec<&str> = package.skills.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(skill_names, ["pdf"]);
    assert!(
        package.tools.is_empty(),
        "display-only tools are not served"
    );
    assert!(
        package.mcp_servers.is_empty(),
        "servers configured in JavaScript are not served"
    );
    // Its static rules files are system prompts, in name order.
    let rules: Vec<(&str, Option<&std::path::Path>)> = package
        .system_prompts
        .iter()
        .map(|p| (p.content.trim(), p.file.as_deref()))
        .collect();
    assert_eq!(
        rules,
        [
            (
                "Quote page numbers when citing a PDF.",
                Some(std::path::Path::new("rules/01-citing.md"))
            ),
            (
                "Never upload a PDF anywhere.",
                Some(std::path::Path::new("rules/02-privacy.md"))
            ),
        ]
    );
    assert!(package.prompts.is_empty());
    assert!(package.hooks.is_empty());
    assert_eq!(
        package.settings.get("language"),
        Some(&Setting {
            kind: SettingType::Select,
            label: Some("OCR language".into()),
            description: None,
            default: Some(json!("en")),
            secret: false,
            required: false,
            options: vec![json!("en"), json!("de")],
        })
    );
    let api_key = package.settings.get("api_key").expect("api_key setting");
    assert_eq!(api_key.kind, SettingType::String);
    assert!(api_key.secret);
    assert!(api_key.required);
    assert_eq!(api_key.default, None);

    // Nothing is an error; every skipped item is named. The JSON path of the item warnings
    // is checked in `aionui_diagnostics_name_the_aionui_object_in_their_json_paths`.
    let file = manifest(&root);
    assert!(
        diagnostics
            .iter()
            .all(|d| d.path == file && d.line.is_none())
    );
    assert!(
        diagnostics
            .iter()
            .all(|d| d.package.as_deref() == Some("aionui-plugin-pdf-lite"))
    );
    let of = |severity: Severity| -> Vec<&str> {
        diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .map(|d| d.message.as_str())
            .collect()
    };
    assert_eq!(of(Severity::Error), Vec::<&str>::new());
    assert_eq!(
        of(Severity::Info),
        [
            "aionui.agents: assistants of the AionUi RFC are not served over MCP",
            "aionui.permissions: `ui:panel` concerns a desktop UI and is ignored",
        ]
    );
    let warnings = of(Severity::Warning);
    let tails = [
        "tools[0]: tool `pdf_read` has no `command` (its handler is JavaScript), so capmux cannot run it; not served",
        "tools[1]: tool `pdf_merge` has no `command` (its handler is JavaScript), so capmux cannot run it; not served",
        "mcpServers[0]: server `pdf-server` is configured in JavaScript (transport is only a label); not served",
    ];
    assert_eq!(warnings.len(), tails.len(), "{warnings:#?}");
    for (warning, tail) in warnings.iter().zip(tails) {
        assert!(warning.ends_with(tail), "{warning}");
    }
}

#[test]
fn aionui_diagnostics_name_the_aionui_object_in_their_json_paths() {
    let root = fixture("good/aionui");
    let (_, diagnostics) = load(&root);
    let file = manifest(&root);
    let id = "aionui-plugin-pdf-lite";
    assert_eq!(
        diagnostics,
        vec![
            info(
                &file,
                id,
                "aionui.agents: assistants of the AionUi RFC are not served over MCP"
            ),
            info(
                &file,
                id,
                "aionui.permissions: `ui:panel` concerns a desktop UI and is ignored"
            ),
            warning(
                &file,
                id,
                "aionui.tools[0]: tool `pdf_read` has no `command` (its handler is JavaScript), so capmux cannot run it; not served"
            ),
            warning(
                &file,
                id,
                "aionui.tools[1]: tool `pdf_merge` has no `command` (its handler is JavaScript), so capmux cannot run it; not served"
            ),
            warning(
                &file,
                id,
                "aionui.mcpServers[0]: server `pdf-server` is configured in JavaScript (transport is only a label); not served"
            ),
        ]
    );
}

#[test]
fn a_package_folder_linked_into_a_folder_of_roots_still_reads_its_own_files() {
    // A common setup while writing a package: link the work tree into the user's folder.
    let tmp = tempfile::tempdir().expect("tempdir");
    let packages = tmp.path().join("packages");
    std::fs::create_dir(&packages).expect("packages folder");
    std::os::unix::fs::symlink(fixture("good/full"), packages.join("full")).expect("symlink");

    let (loaded, diagnostics) = discover(&[explicit(&packages)]);
    assert_eq!(diagnostics, vec![]);
    assert_eq!(loaded.len(), 1);
    assert_full_package(&loaded[0], &packages.join("full"));
}

// ---------------------------------------------------------------------------------------------
// Broken packages, each read beside `good/full`
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_json_is_reported_at_its_line_and_the_package_beside_it_loads() {
    let root = fixture("broken/invalid-json");
    let beside = discover_beside_full(&root);
    // The manifest has no usable name, so the folder name stands for the package.
    assert_eq!(
        beside.diagnostics,
        vec![
            Diagnostic::error(
                manifest(&root),
                "invalid JSON: key must be a string at line 5 column 5"
            )
            .at_line(5)
            .in_package("invalid-json")
        ]
    );
    assert_eq!(beside.ids(), Vec::<&str>::new());
}

#[test]
fn a_capmux_value_that_is_not_an_object_keeps_the_package_out() {
    let root = fixture("broken/capmux-not-an-object");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-capmux-not-an-object",
            "\"capmux\": expected an object, found an array"
        )]
    );
    assert_eq!(beside.ids(), Vec::<&str>::new());
}

#[test]
fn a_manifest_that_is_not_a_json_object_keeps_the_package_out() {
    let root = fixture("broken/top-level-not-an-object");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "top-level-not-an-object",
            "expected a JSON object, found an array"
        )]
    );
    assert_eq!(beside.ids(), Vec::<&str>::new());
}

#[test]
fn a_package_json_without_a_capmux_object_is_not_a_package() {
    let root = fixture("broken/no-capmux-object");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "just-an-npm-package",
            "package.json has no \"capmux\" object: add one to make this folder a capmux package"
        )]
    );
    assert_eq!(beside.ids(), Vec::<&str>::new());
}

#[test]
fn a_priority_that_is_not_a_number_keeps_the_package_out() {
    let root = fixture("broken/priority-not-a-number");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-priority-not-a-number",
            "capmux.priority: expected a whole number, found a string"
        )]
    );
    assert_eq!(beside.ids(), Vec::<&str>::new());
}

#[test]
fn a_tool_whose_name_is_a_number_is_dropped_and_its_sibling_loads() {
    let root = fixture("broken/tool-name-not-a-string");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-tool-name-not-a-string",
            "capmux.tools[0].name: expected a string, found a number"
        )]
    );
    assert_eq!(tool_names(beside.only_package()), ["kept"]);
}

#[test]
fn permissions_given_as_a_string_keep_the_package_out() {
    let root = fixture("broken/permissions-not-an-array");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-permissions-not-an-array",
            "capmux.permissions: expected an array of strings, found a string"
        )]
    );
    assert_eq!(beside.ids(), Vec::<&str>::new());
}

#[test]
fn a_missing_prompt_file_drops_that_prompt_only() {
    let root = fixture("broken/missing-prompt-file");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-missing-prompt-file",
            "capmux.prompts[0].file: `prompts/gone.md` does not exist"
        )]
    );
    let package = beside.only_package();
    assert_eq!(prompt_names(package), ["kept"]);
    assert_eq!(package.prompts[0].template, "Still here.");
}

#[test]
fn prompt_files_that_climb_out_of_the_root_are_refused() {
    let case = fixture("broken/prompt-file-outside-root");
    // The file exists: it is refused for where it is, not for being absent.
    assert!(case.join("outside.md").is_file());
    let root = case.join("package");
    let beside = discover_beside_full(&root);
    let id = "broken-prompt-file-outside-root";
    assert_eq!(
        beside.diagnostics,
        vec![
            error(
                manifest(&root),
                id,
                "capmux.systemPrompts[0].file: path `../outside.md` leaves the package root"
            ),
            error(
                manifest(&root),
                id,
                "capmux.prompts[0].file: path `prompts/../../outside.md` leaves the package root"
            ),
        ]
    );
    let package = beside.only_package();
    assert_eq!(package.system_prompts.len(), 1);
    assert_eq!(package.system_prompts[0].content, "Kept.");
    assert_eq!(prompt_names(package), ["kept"]);
}

#[test]
fn prompt_files_that_leave_the_root_through_a_link_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("symlink-escape");
    support::copy_tree(&fixture("broken/symlink-escape"), &root);
    let outside = tmp.path().join("outside.md");
    std::fs::write(&outside, "A secret beside the package.\n").expect("write outside file");
    let prompts = root.join("prompts");
    // One absolute link and one relative link out, and one link that stays inside.
    std::os::unix::fs::symlink(&outside, prompts.join("leak.md")).expect("symlink");
    std::os::unix::fs::symlink("../../outside.md", prompts.join("linked-rules.md"))
        .expect("symlink");
    std::os::unix::fs::symlink("real.md", prompts.join("alias.md")).expect("symlink");

    let beside = discover_beside_full(&root);
    let id = "broken-symlink-escape";
    assert_eq!(
        beside.diagnostics,
        vec![
            error(
                manifest(&root),
                id,
                "capmux.systemPrompts[0].file: path `prompts/linked-rules.md` leaves the package root through a link"
            ),
            error(
                manifest(&root),
                id,
                "capmux.prompts[0].file: path `prompts/leak.md` leaves the package root through a link"
            ),
        ]
    );
    let package = beside.only_package();
    assert!(package.system_prompts.is_empty());
    assert_eq!(prompt_names(package), ["alias"]);
    assert_eq!(package.prompts[0].template, "Inside the package.\n");
}

#[test]
fn a_duplicate_tool_name_keeps_the_first_tool() {
    let root = fixture("broken/duplicate-tool-names");
    let beside = discover_beside_full(&root);
    let id = "broken-duplicate-tool-names";
    let file = manifest(&root);
    assert_eq!(
        beside.diagnostics,
        vec![
            error(
                &file,
                id,
                "capmux.tools[1]: duplicate tool name `search` (first at capmux.tools[0]); this one is not loaded"
            ),
            // A name that becomes a duplicate only once made valid is a duplicate too.
            warning(
                &file,
                id,
                "capmux.tools[2]: tool name `search!` may only use A-Z a-z 0-9 _ -; it is served as `search`"
            ),
            error(
                &file,
                id,
                "capmux.tools[2]: duplicate tool name `search` (first at capmux.tools[0]); this one is not loaded"
            ),
        ]
    );
    let package = beside.only_package();
    assert_eq!(tool_names(package), ["search"]);
    assert_eq!(
        package.tools[0].description.as_deref(),
        Some("The first search")
    );
}

#[test]
fn a_duplicate_prompt_name_keeps_the_first_prompt() {
    let root = fixture("broken/duplicate-prompt-names");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-duplicate-prompt-names",
            "capmux.prompts[1]: duplicate prompt name `summary` (first at capmux.prompts[0]); this one is not loaded"
        )]
    );
    let package = beside.only_package();
    assert_eq!(prompt_names(package), ["summary"]);
    assert_eq!(package.prompts[0].template, "First.");
}

#[test]
fn names_with_no_letter_or_digit_drop_their_item() {
    let root = fixture("broken/unusable-name");
    let beside = discover_beside_full(&root);
    let id = "broken-unusable-name";
    assert_eq!(
        beside.diagnostics,
        vec![
            error(
                manifest(&root),
                id,
                "capmux.prompts[0]: prompt name cannot be made valid: `???` has no ASCII letter or digit to build a name from"
            ),
            error(
                manifest(&root),
                id,
                "capmux.tools[0]: tool name cannot be made valid: `!!!` has no ASCII letter or digit to build a name from"
            ),
        ]
    );
    let package = beside.only_package();
    assert_eq!(tool_names(package), ["kept"]);
    assert!(package.prompts.is_empty());
}

#[test]
fn names_that_can_be_made_valid_are_served_changed_with_a_warning() {
    let root = fixture("broken/fixable-name");
    let beside = discover_beside_full(&root);
    let id = "broken-fixable-name";
    assert_eq!(
        beside.diagnostics,
        vec![
            warning(
                manifest(&root),
                id,
                "capmux.prompts[0]: prompt name `plugin:pdf:read` may only use A-Z a-z 0-9 _ -; it is served as `plugin_pdf_read`"
            ),
            warning(
                manifest(&root),
                id,
                "capmux.tools[0]: tool name `create issue` may only use A-Z a-z 0-9 _ -; it is served as `create_issue`"
            ),
        ]
    );
    let package = beside.only_package();
    assert_eq!(tool_names(package), ["create_issue"]);
    assert_eq!(prompt_names(package), ["plugin_pdf_read"]);
}

#[test]
fn unknown_keys_are_ignored_with_a_hint_at_the_likely_one() {
    let root = fixture("broken/unknown-keys");
    let beside = discover_beside_full(&root);
    let id = "broken-unknown-keys";
    assert_eq!(
        beside.diagnostics,
        vec![
            warning(
                manifest(&root),
                id,
                "capmux: unknown key `banana` is ignored"
            ),
            warning(
                manifest(&root),
                id,
                "capmux: unknown key `systemPrompt` is ignored (did you mean `systemPrompts`?)"
            ),
            warning(
                manifest(&root),
                id,
                "capmux.tools[0]: unknown key `timeout` is ignored (did you mean `timeoutMs`?)"
            ),
        ]
    );
    let package = beside.only_package();
    assert!(
        package.system_prompts.is_empty(),
        "a misspelt key is not read"
    );
    assert_eq!(tool_names(package), ["run"]);
    assert_eq!(
        package.tools[0].handler,
        ToolHandler::Command {
            argv: vec!["true".into()],
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    );
}

#[test]
fn unknown_permission_keeps_the_package_out() {
    let root = fixture("broken/unknown-permission");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-unknown-permission",
            "capmux.permissions: unknown permission `shell:everything`; known permissions are fs:read, fs:write, fs:global, network:fetch, shell:execute, mcp:server"
        )]
    );
    assert_eq!(beside.ids(), Vec::<&str>::new());
}

/// A copy of `broken/huge-prompt-file` whose `prompts/huge.md` has `len` bytes.
fn huge_prompt_package(tmp: &Path, len: u64) -> PathBuf {
    let root = tmp.join("huge-prompt-file");
    support::copy_tree(&fixture("broken/huge-prompt-file"), &root);
    std::fs::create_dir_all(root.join("prompts")).expect("prompts folder");
    let text = "x".repeat(usize::try_from(len).expect("fits"));
    std::fs::write(root.join("prompts/huge.md"), text).expect("write huge prompt");
    root
}

#[test]
fn a_prompt_file_over_one_mebibyte_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = huge_prompt_package(tmp.path(), MAX_FILE_BYTES + 1);
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-huge-prompt-file",
            "capmux.prompts[0].file: `prompts/huge.md`: file is 1048577 bytes; package files are capped at 1048576 bytes"
        )]
    );
    assert_eq!(prompt_names(beside.only_package()), ["kept"]);
}

#[test]
fn a_prompt_file_of_exactly_one_mebibyte_still_loads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = huge_prompt_package(tmp.path(), 1024 * 1024);
    let package = load_clean(&root);
    assert_eq!(prompt_names(&package), ["huge", "kept"]);
    assert_eq!(package.prompts[0].template.len(), 1024 * 1024);
}

#[test]
fn a_newer_manifest_version_keeps_the_package_out() {
    let root = fixture("broken/manifest-version-2");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-manifest-version-2",
            "capmux.manifestVersion 2 is not supported: this capmux reads version 1"
        )]
    );
    assert_eq!(beside.ids(), Vec::<&str>::new());
}

#[test]
fn a_package_needing_a_newer_capmux_keeps_out() {
    let root = fixture("broken/min-host-version-too-new");
    let beside = discover_beside_full(&root);
    let message = format!(
        "capmux.minHostVersion: the package needs capmux 99.0.0 or newer; this is {}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-min-host-version-too-new",
            &message
        )]
    );
    assert_eq!(beside.ids(), Vec::<&str>::new());
}

#[test]
fn a_tool_command_given_as_a_string_is_refused_with_the_argv_form() {
    let root = fixture("broken/tool-command-string");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-tool-command-string",
            "capmux.tools[0].command: must be an argv array such as [\"python3\", \"tools/lint.py\"], not the string `python3 tools/lint.py`"
        )]
    );
    assert_eq!(tool_names(beside.only_package()), ["kept"]);
}

#[test]
fn a_tool_schema_that_does_not_take_an_object_drops_the_tool() {
    let root = fixture("broken/schema-not-object");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-schema-not-object",
            "capmux.tools[0].inputSchema: MCP tools take an object; the schema needs \"type\": \"object\""
        )]
    );
    assert_eq!(tool_names(beside.only_package()), ["kept"]);
}

#[test]
fn a_tool_schema_that_is_not_valid_json_schema_drops_the_tool() {
    let root = fixture("broken/schema-invalid");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-schema-invalid",
            "capmux.tools[0].inputSchema: not a valid JSON Schema at /properties/a/type: \"nosuchtype\" is not valid under any of the schemas listed in the 'anyOf' keyword"
        )]
    );
    assert_eq!(tool_names(beside.only_package()), ["kept"]);
}

#[test]
fn a_hook_on_an_unknown_event_is_dropped_with_the_known_events_listed() {
    let root = fixture("broken/unknown-hook-event");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-unknown-hook-event",
            "capmux.hooks[0].event: `onBeforeMessage` is not one of beforeMessage, afterResponse, beforeToolCall, afterToolCall, beforePromptGet, afterPromptGet, beforeResourceRead, afterResourceRead, sessionStart"
        )]
    );
    let hooks = &beside.only_package().hooks;
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].event, HookEvent::AfterResponse);
}

#[test]
fn an_undeclared_placeholder_is_a_warning_at_the_file_that_uses_it() {
    let root = fixture("broken/undeclared-placeholder");
    let beside = discover_beside_full(&root);
    let id = "broken-undeclared-placeholder";
    assert_eq!(
        beside.diagnostics,
        vec![
            // A prompt read from a file: the warning points at that file.
            warning(
                root.join("prompts/translate.md"),
                id,
                "prompt `translate` uses `{{x}}` but declares no argument `x`; it stays as written"
            ),
            // An inline prompt: the warning points at the manifest.
            warning(
                manifest(&root),
                id,
                "prompt `inline` uses `{{y}}` but declares no argument `y`; it stays as written"
            ),
        ]
    );
    let package = beside.only_package();
    assert_eq!(prompt_names(package), ["translate", "inline"]);
    assert_eq!(
        package.prompts[0].template,
        "Translate {{text}} into {{x}}.\n"
    );
    assert_eq!(package.prompts[1].template, "Hello {{y}}");
}

#[test]
fn a_folder_without_a_manifest_in_a_folder_of_roots_is_skipped_with_a_warning() {
    let folder = fixture("broken/no-manifest");
    let beside = discover_beside_full(&folder);
    assert_eq!(
        beside.diagnostics,
        vec![Diagnostic::warning(
            folder.join("notes"),
            "no package here (a capmux package.json, a Claude Code plugin or marketplace, a Gemini CLI, Codex or AionUi extension, a SKILL.md, or skill folders); the folder is skipped"
        )]
    );
    let tiny = beside.only_package();
    assert_eq!(tiny.id, "capmux-plugin-tiny");
    assert_eq!(tiny.root, folder.join("tiny"));
    assert_eq!(prompt_names(tiny), ["hello"]);

    // Asked for directly, the same folder is an error: there is nothing to load.
    let (package, diagnostics) = load(&folder.join("notes"));
    assert!(package.is_none());
    assert_eq!(
        diagnostics,
        vec![Diagnostic::error(
            folder.join("notes"),
            "no package found: expected a package.json with a \"capmux\" (or \"aionui\") object, a Claude Code plugin, a Gemini CLI, Codex or AionUi extension, a SKILL.md, or folders of SKILL.md"
        )]
    );
}

#[test]
fn the_same_package_id_in_a_later_root_is_shadowed_with_a_warning() {
    let full_root = fixture("good/full");
    let copy = fixture("broken/shadowed");
    let (packages, diagnostics) = discover(&[explicit(&full_root), explicit(&copy)]);
    assert_eq!(
        diagnostics,
        vec![warning(
            &copy,
            FULL,
            &format!(
                "package `{FULL}` is shadowed by the one at {}; this copy is not served",
                full_root.display()
            )
        )]
    );
    assert_eq!(packages.len(), 1);
    assert_full_package(&packages[0], &full_root);

    // The order of the roots decides: read first, the other copy wins.
    let (packages, diagnostics) = discover(&[explicit(&copy), explicit(&full_root)]);
    assert_eq!(packages.len(), 1);
    assert_eq!(packages[0].root, copy);
    assert_eq!(prompt_names(&packages[0]), ["impostor"]);
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].path, full_root);
    assert_eq!(diagnostics[0].severity, Severity::Warning);
}

#[test]
fn a_hook_timeout_that_is_not_positive_is_refused() {
    let root = fixture("broken/hook-timeout-not-positive");
    let beside = discover_beside_full(&root);
    assert_eq!(
        beside.diagnostics,
        vec![error(
            manifest(&root),
            "broken-hook-timeout-not-positive",
            "capmux.hooks[0].timeoutMs: must be positive"
        )]
    );
    let hooks = &beside.only_package().hooks;
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].event, HookEvent::AfterResponse);
    assert_eq!(hooks[0].timeout_ms, Some(1000));
}

#[test]
fn a_setting_default_of_the_wrong_type_is_reported_and_not_served() {
    let root = fixture("broken/setting-default-wrong-type");
    let beside = discover_beside_full(&root);
    // The exact wording is the fixer's to choose; what matters is that it is said, where.
    assert_eq!(beside.diagnostics.len(), 1, "{:#?}", beside.diagnostics);
    let diagnostic = &beside.diagnostics[0];
    assert_ne!(diagnostic.severity, Severity::Info);
    assert_eq!(diagnostic.path, manifest(&root));
    assert!(
        diagnostic
            .message
            .starts_with("capmux.settings.max_results.default"),
        "{}",
        diagnostic.message
    );

    let package = beside.only_package().clone();
    let pool = Pool::build(vec![package], &config(""));
    let values = &pool.packages[0].settings;
    assert_ne!(values.get("max_results"), Some(&json!("ten")));
    assert_eq!(values.get("verbose"), Some(&json!(true)));
}

#[test]
fn a_package_json_starting_with_a_byte_order_mark_loads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("full");
    support::copy_tree(&fixture("good/full"), &root);
    let text = std::fs::read_to_string(manifest(&root)).expect("read manifest");
    std::fs::write(manifest(&root), format!("\u{feff}{text}")).expect("write manifest");
    let package = load_clean(&root);
    assert_full_package(&package, &root);
}

// ---------------------------------------------------------------------------------------------
// The pool: namespaces and public names across packages
// ---------------------------------------------------------------------------------------------

/// The id of the package that serves the public tool `public`.
fn tool_owner<'p>(pool: &'p Pool, public: &str) -> &'p str {
    let (active, _) = pool
        .tool(public)
        .unwrap_or_else(|| panic!("no tool `{public}`"));
    &active.package.id
}

fn public_tools(pool: &Pool) -> Vec<&str> {
    pool.tools.keys().map(String::as_str).collect()
}

fn public_prompts(pool: &Pool) -> Vec<&str> {
    pool.prompts.keys().map(String::as_str).collect()
}

#[test]
fn ids_that_give_the_same_namespace_keep_both_packages_and_suffix_the_later_one() {
    let jira_a = load_clean(&fixture("pool/jira-a"));
    let jira_b = load_clean(&fixture("pool/jira-b"));
    let b_root = jira_b.root.clone();
    let cfg = config("");
    // Same priority, so the id decides: `@a/…` sorts before `@b/…`, whatever the input order.
    let pool = Pool::build(vec![jira_b, jira_a], &cfg);

    assert_eq!(
        pool.diagnostics(),
        [warning(
            &b_root,
            "@b/jira",
            &format!(
                "namespace `jira` is taken by @a/capmux-plugin-jira; this package's items are served under `jira-6ebe8b` (set `namespace` under [packages.\"@b/jira\"] in {} to choose one)",
                repo_root().join("capmux.toml").display()
            )
        )]
    );
    let namespaces: Vec<(&str, &str)> = pool
        .packages
        .iter()
        .map(|a| (a.package.id.as_str(), a.namespace.as_str()))
        .collect();
    assert_eq!(
        namespaces,
        [
            ("@a/capmux-plugin-jira", "jira"),
            ("@b/jira", "jira-6ebe8b")
        ]
    );
    assert_eq!(public_tools(&pool), ["jira-6ebe8b__search", "jira__search"]);
    assert_eq!(tool_owner(&pool, "jira__search"), "@a/capmux-plugin-jira");
    assert_eq!(tool_owner(&pool, "jira-6ebe8b__search"), "@b/jira");
    assert_eq!(
        public_prompts(&pool),
        ["compose", "jira-6ebe8b__triage", "jira__triage", "system"]
    );
}

#[test]
fn a_lower_priority_number_keeps_the_namespace_whatever_the_id() {
    let jira_a = load_clean(&fixture("pool/jira-a"));
    let mut jira_b = load_clean(&fixture("pool/jira-b"));
    jira_b.priority = 10;
    let pool = Pool::build(vec![jira_a, jira_b], &config(""));

    assert_eq!(pool.diagnostics().len(), 1);
    assert_eq!(pool.diagnostics()[0].severity, Severity::Warning);
    assert_eq!(
        pool.diagnostics()[0].package.as_deref(),
        Some("@a/capmux-plugin-jira")
    );
    assert_eq!(tool_owner(&pool, "jira__search"), "@b/jira");
    assert_eq!(
        tool_owner(&pool, "jira-98514a__search"),
        "@a/capmux-plugin-jira"
    );
}

#[test]
fn a_suffixed_namespace_never_lands_on_one_already_taken() {
    let jira_a = load_clean(&fixture("pool/jira-a"));
    let jira_b = load_clean(&fixture("pool/jira-b"));
    // A package whose own namespace is the suffixed one `@b/jira` will be given, read first.
    let mut squatter = jira_a.clone();
    squatter.id = "jira-6ebe8b".into();
    squatter.priority = 1;
    let pool = Pool::build(vec![jira_a, jira_b, squatter], &config(""));

    let namespaces: BTreeSet<&str> = pool.packages.iter().map(|a| a.namespace.as_str()).collect();
    assert_eq!(namespaces.len(), 3, "{namespaces:?}");
    let data_dirs: BTreeSet<&Path> = pool.packages.iter().map(|a| a.data_dir.as_path()).collect();
    assert_eq!(data_dirs.len(), 3, "{data_dirs:?}");
    assert_eq!(pool.tools.len(), 3, "{:?}", public_tools(&pool));
    assert!(
        pool.diagnostics()
            .iter()
            .all(|d| d.severity != Severity::Error),
        "{:#?}",
        pool.diagnostics()
    );
}

#[test]
fn a_namespace_alias_in_the_config_settles_the_collision_quietly() {
    let jira_a = load_clean(&fixture("pool/jira-a"));
    let jira_b = load_clean(&fixture("pool/jira-b"));
    let cfg = config("[packages.\"@b/jira\"]\nnamespace = \"tracker\"\n");
    let pool = Pool::build(vec![jira_a, jira_b], &cfg);

    assert!(pool.diagnostics().is_empty(), "{:?}", pool.diagnostics());
    assert_eq!(public_tools(&pool), ["jira__search", "tracker__search"]);
    assert_eq!(tool_owner(&pool, "tracker__search"), "@b/jira");
    assert_eq!(
        pool.tool_names.parse("tracker__search"),
        Some(&QualifiedName::new("tracker", "search"))
    );
}

#[test]
fn a_package_claiming_the_reserved_namespace_is_renamed() {
    let reserved = load_clean(&fixture("pool/reserved"));
    let root = reserved.root.clone();
    let pool = Pool::build(vec![reserved], &config(""));

    assert_eq!(
        pool.diagnostics(),
        [warning(
            &root,
            "capmux",
            &format!(
                "namespace `capmux` is taken by capmux itself; this package's items are served under `capmux-b28e00` (set `namespace` under [packages.\"capmux\"] in {} to choose one)",
                repo_root().join("capmux.toml").display()
            )
        )]
    );
    assert_eq!(public_tools(&pool), ["capmux-b28e00__status"]);
    assert_eq!(tool_owner(&pool, "capmux-b28e00__status"), "capmux");
}

#[test]
fn long_names_are_shortened_within_the_budget_and_map_back() {
    let long = load_clean(&fixture("pool/long-names"));
    let pool = Pool::build(vec![long], &config(""));
    assert!(pool.diagnostics().is_empty(), "{:?}", pool.diagnostics());
    assert_eq!(DEFAULT_BUDGET, 51);

    let csv = "export_every_open_issue_of_the_current_sprint_as_csv";
    let json_name = "export_every_open_issue_of_the_current_sprint_as_json";
    let prompt = "summarize_every_open_issue_of_the_current_sprint_for_the_standup";
    assert_eq!(pool.tools.len(), 3);
    assert!(pool.tools.contains_key("long__short"));
    for item in [csv, json_name] {
        let public = pool
            .tools
            .keys()
            .find(|public| pool.tool_names.parse(public) == Some(&QualifiedName::new("long", item)))
            .unwrap_or_else(|| panic!("no public name maps back to `{item}`"));
        assert!(public.len() <= 51, "{public}");
        assert!(is_public_name(public), "{public}");
        assert!(public.starts_with("long__export_every_open"), "{public}");
        let (_, tool) = pool.tool(public).expect("routed");
        assert_eq!(tool.name, item);
        assert_eq!(pool.tools[public].item.name, public.as_str());
    }
    let prompt_public = pool
        .prompts
        .keys()
        .find(|public| pool.prompt_names.parse(public) == Some(&QualifiedName::new("long", prompt)))
        .expect("the long prompt maps back");
    assert!(prompt_public.len() <= 51, "{prompt_public}");
    assert!(is_public_name(prompt_public), "{prompt_public}");

    // A smaller budget from the config is kept as well.
    let long = load_clean(&fixture("pool/long-names"));
    let pool = Pool::build(vec![long], &config("name_budget = 30\n"));
    assert_eq!(pool.tools.len(), 3);
    for public in pool.tools.keys() {
        assert!(public.len() <= 30, "{public}");
        assert!(is_public_name(public), "{public}");
        let name = pool.tool_names.parse(public).expect("maps back");
        assert_eq!(name.namespace, "long");
    }
}

#[test]
fn the_bundled_plugins_load_without_errors_or_warnings() {
    let options = Options {
        config: None,
        overrides: Overrides::default(),
        cwd: repo_root(),
    };
    let loaded = capmux::load_with(config("user_packages = false\n"), &options);
    let problems: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Info)
        .map(ToString::to_string)
        .collect();
    assert_eq!(problems, Vec::<String>::new());

    let ids: Vec<(&str, Source)> = loaded
        .pool
        .packages
        .iter()
        .map(|a| (a.package.id.as_str(), a.package.source))
        .collect();
    assert_eq!(
        ids,
        [
            ("capmux-plugin-house-rules", Source::Bundled),
            ("capmux-plugin-notes", Source::Bundled),
            ("capmux-plugin-text-tools", Source::Bundled),
            ("capmux-skills", Source::Bundled),
        ]
    );
    for active in loaded.pool.packages.iter() {
        assert!(active.enabled);
        // Bundled packages hold what they declare.
        assert_eq!(active.grants, active.package.permissions);
    }
    assert_eq!(
        public_tools(&loaded.pool),
        [
            "capmux__load_skill",
            "capmux__read_skill_file",
            "notes__add_note",
            "notes__list_notes",
            "notes__search_notes",
            "notes__verify_notes",
            "text-tools__json_query",
            "text-tools__sha256",
            "text-tools__text_diff",
            "text-tools__word_count",
        ]
    );
}

#[test]
fn every_public_name_is_valid_and_every_list_is_sorted() {
    let options = Options {
        config: None,
        overrides: Overrides {
            packages: vec![
                fixture("good/full"),
                fixture("broken/fixable-name"),
                fixture("pool/jira-a"),
                fixture("pool/jira-b"),
                fixture("pool/long-names"),
            ],
            ..Overrides::default()
        },
        cwd: repo_root(),
    };
    let loaded = capmux::load_with(config("user_packages = false\n"), &options);
    let pool = &loaded.pool;
    // The five fixtures, the three bundled plugins and the bundled skills.
    assert_eq!(pool.packages.len(), 9);
    assert!(pool.tools.len() >= 16, "{:?}", public_tools(pool));
    assert!(pool.tools.contains_key("full__echo"));
    assert!(pool.tools.contains_key("broken-fixable-name__create_issue"));
    assert!(pool.prompts.contains_key("full__review"));
    assert!(
        pool.prompts
            .contains_key("broken-fixable-name__plugin_pdf_read")
    );

    for (public, entry) in &pool.tools {
        assert!(is_public_name(public), "{public}");
        assert!(public.len() <= DEFAULT_BUDGET, "{public}");
        assert_eq!(entry.item.name, public.as_str());
        assert!(
            pool.tool(public).is_some() || public.starts_with("capmux__"),
            "{public} has no route"
        );
    }
    for (public, entry) in &pool.prompts {
        assert!(is_public_name(public), "{public}");
        assert!(public.len() <= DEFAULT_BUDGET, "{public}");
        assert_eq!(&entry.item.name, public);
    }
    let tools = public_tools(pool);
    let mut sorted = tools.clone();
    sorted.sort_unstable();
    assert_eq!(tools, sorted);
    let prompts = public_prompts(pool);
    let mut sorted = prompts.clone();
    sorted.sort_unstable();
    assert_eq!(prompts, sorted);

    // What a client lists comes in the same order, page after page.
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (page, next) = capmux::pool::page(&pool.tools, cursor.as_deref(), 5);
        listed.extend(page.into_iter().map(|t| t.name.into_owned()));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, tools);

    // The diagnostics of the whole load come sorted too.
    let mut sorted_diagnostics = loaded.diagnostics.clone();
    capmux::diagnostic::sort(&mut sorted_diagnostics);
    assert_eq!(loaded.diagnostics, sorted_diagnostics);
}

#[test]
fn a_tool_and_a_prompt_of_one_package_may_share_a_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = crate::support::package(
        dir.path(),
        "capmux-plugin-both",
        json!({ "manifestVersion": 1, "permissions": ["shell:execute"],
                "tools": [{ "name": "review", "description": "x", "command": ["sh", "review.sh"] }],
                "prompts": [{ "name": "review", "content": "Review this." }] }),
        &[("review.sh", "echo ok")],
    );
    let package = load_clean(&root);
    let pool = Pool::build(vec![package], &config(""));
    assert!(pool.diagnostics().is_empty(), "{:?}", pool.diagnostics());
    assert!(pool.tools.contains_key("both__review"));
    assert!(pool.prompts.contains_key("both__review"));
}

#[test]
fn a_command_that_cannot_run_here_is_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = crate::support::package(
        dir.path(),
        "capmux-plugin-missing",
        json!({ "manifestVersion": 1, "permissions": ["shell:execute"], "tools": [
            { "name": "a", "description": "x", "command": ["python3", "tools/gone.py"] },
            { "name": "b", "description": "x", "command": ["./bin/gone"] },
            { "name": "c", "description": "x", "command": ["no-such-program-capmux-test", "${pluginRoot}/x.py"] }
        ] }),
        &[],
    );
    let (package, diagnostics) = load(&root);
    assert_eq!(
        package.expect("loads").tools.len(),
        3,
        "warnings keep the tools"
    );
    let path = manifest(&root);
    let package = "capmux-plugin-missing";
    assert_eq!(
        diagnostics,
        vec![
            warning(
                &path,
                package,
                "capmux.tools[0].command[1]: `tools/gone.py` does not exist in the package"
            ),
            warning(
                &path,
                package,
                "capmux.tools[1].command[0]: `./bin/gone` does not exist in the package"
            ),
            warning(
                &path,
                package,
                "capmux.tools[2].command[0]: `no-such-program-capmux-test` is not on PATH here; the tool fails until it is installed"
            ),
        ]
    );
}
