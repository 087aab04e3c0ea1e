//! Skills (Agent Skills `SKILL.md` folders) as their users meet them: authors whose
//! frontmatter comes in every shape seen in the wild, people who point capmux at a skill
//! folder, clients that read skills through MCP (instructions, resources, `skills/list`,
//! prompts, the two skill tools), and `capmux skills export` into a client's skills folder.
//!
//! Fixtures live under `tests/fixtures/skills/`:
//! - `variants/`: one folder of skills, one frontmatter shape each — `api-migration` (a `|-`
//!   block scalar description, `argument-hint`, `$ARGUMENTS`), `spreadsheet-formulas`
//!   (double-quoted), `commit-messages` (single-quoted with `''`), `agent-reviewer` (an
//!   unquoted description running over lines holding `Key: value` and `<example>`, which
//!   strict YAML rejects), `meeting-notes` (no license), `hook-development` (`name: Hook
//!   Development`, `version`), `tidy-imports` (extra keys, `user-invocable: no`, nested
//!   `metadata`), `release-notes` (a lowercase `skill.md`), and three that are refused:
//!   `draft-only` (no description), `plain-readme` (no frontmatter), `empty-description`.
//! - `served/`: two skills with scripts, references, templates and a file name with a space;
//!   the tests copy it and add a PNG and links pointing outside at run time.
//! - `packages/`: a bare skill (`sql-review`), a folder of skills (`ops`), a folder named
//!   `skills` (`acme/skills`), and a native package with a `skills/` folder and a root
//!   SKILL.md (`docs-kit`); `ops` and `docs-kit` both have a `style-guide` skill.
//! - `hostile/path-name/`: a skill whose frontmatter says `name: ../../evil`.
//!
//! Links and binary files are made at run time, so none is committed.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use capmux::export::{self, ExportError};
use capmux::package::{Format, Source};
use capmux::{Config, Diagnostic, Options, Overrides, Pool};
use rmcp::ServiceError;
use rmcp::model::{
    ErrorCode, GetPromptRequestParams, GetSkillRequestParams, ReadResourceRequestParams,
    ResourceContents, SkillResource, SkillResources, validate_skills,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::support::{self, Client, call, capmux, connect, text_of};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A 1×1 orange PNG: binary, and not valid UTF-8 (it starts with 0x89).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xf8, 0xdf, 0xc0, 0x00,
    0x00, 0x04, 0x01, 0x01, 0x80, 0xfb, 0xd7, 0xcb, 0xf1, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// What the links made at run time point to; it must never reach a client or an export.
const SECRET: &str = "TOP SECRET: the deploy key is hunter2\n";

fn fixture(rel: &str) -> PathBuf {
    support::repo().join("tests/fixtures/skills").join(rel)
}

/// A temporary folder and its canonical path (diagnostics carry canonical paths).
fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().canonicalize().expect("canonical tempdir");
    (dir, path)
}

/// One entry of a folder as `tree` sees it; links are recorded, never followed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

/// Every path below `dir` (relative, `/`-separated) with what is there.
fn tree(dir: &Path) -> BTreeMap<String, Node> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        for entry in std::fs::read_dir(dir).expect("read folder") {
            let entry = entry.expect("entry");
            let path = entry.path();
            let rel = path
                .strip_prefix(base)
                .expect("below base")
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type().expect("file type");
            if kind.is_symlink() {
                out.insert(rel, Node::Link(std::fs::read_link(&path).expect("link")));
            } else if kind.is_dir() {
                out.insert(rel, Node::Dir);
                walk(base, &path, out);
            } else {
                out.insert(rel, Node::File(std::fs::read(&path).expect("read file")));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The files of `tree(dir)` only, as text, for readable comparisons.
fn files(dir: &Path) -> BTreeMap<String, String> {
    tree(dir)
        .into_iter()
        .filter_map(|(path, node)| match node {
            Node::File(bytes) => Some((path, String::from_utf8_lossy(&bytes).into_owned())),
            _ => None,
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The Markdown after the frontmatter, trimmed, as the skill's body.
fn body_of(skill_md: &Path) -> String {
    let text = std::fs::read_to_string(skill_md).expect("read SKILL.md");
    text.splitn(3, "---\n")
        .nth(2)
        .expect("frontmatter")
        .trim()
        .to_owned()
}

fn error(path: impl Into<PathBuf>, package: &str, message: &str) -> Diagnostic {
    Diagnostic::error(path, message).in_package(package)
}

fn warning(path: impl Into<PathBuf>, package: &str, message: &str) -> Diagnostic {
    Diagnostic::warning(path, message).in_package(package)
}

fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.output().expect("capmux runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn args(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("expected an object, got {other}"),
    }
}

async fn prompt_text(client: &Client, name: &str, arguments: Option<&str>) -> String {
    let mut request = GetPromptRequestParams::new(name);
    if let Some(arguments) = arguments {
        request = request.with_arguments(args(json!({ "arguments": arguments })));
    }
    let result = client.get_prompt(request).await.expect("prompts/get");
    result.messages[0]
        .content
        .as_text()
        .map(|t| t.text.clone())
        .expect("a text message")
}

fn mcp_error(err: ServiceError) -> rmcp::model::ErrorData {
    match err {
        ServiceError::McpError(e) => e,
        other => panic!("expected an MCP error, got {other}"),
    }
}

/// A copy of `served/` in `root/sources/served`, with a PNG, and two links pointing outside
/// the skill (`secret.md` to a file, `outside` to a folder), both next to `root/outside/`.
fn served_with_links(root: &Path) -> PathBuf {
    let served = root.join("sources/served");
    support::copy_tree(&fixture("served"), &served);
    let forms = served.join("pdf-forms");
    std::fs::create_dir_all(forms.join("assets")).expect("mkdir assets");
    std::fs::write(forms.join("assets/logo.png"), PNG).expect("write png");
    let outside = root.join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir outside");
    std::fs::write(outside.join("secret.txt"), SECRET).expect("write secret");
    symlink(outside.join("secret.txt"), forms.join("secret.md")).expect("file link");
    symlink(&outside, forms.join("outside")).expect("folder link");
    served
}

/// The files of `pdf-forms` as served: URI, path on disk, MIME type.
const PDF_FORMS_FILES: [(&str, &str, &str); 6] = [
    (
        "skill://served/pdf-forms/SKILL.md",
        "SKILL.md",
        "text/markdown",
    ),
    (
        "skill://served/pdf-forms/assets/logo.png",
        "assets/logo.png",
        "image/png",
    ),
    (
        "skill://served/pdf-forms/examples/tax%20form.txt",
        "examples/tax form.txt",
        "text/plain",
    ),
    (
        "skill://served/pdf-forms/reference.md",
        "reference.md",
        "text/markdown",
    ),
    (
        "skill://served/pdf-forms/scripts/fill_form.py",
        "scripts/fill_form.py",
        "text/x-python",
    ),
    (
        "skill://served/pdf-forms/templates/fields.json",
        "templates/fields.json",
        "application/json",
    ),
];

/// A client on `served_with_links`, with the loader's diagnostics checked.
async fn served_client(root: &Path) -> (Client, PathBuf) {
    let served = served_with_links(root);
    let loaded = support::load(std::slice::from_ref(&served), "", root);
    let forms = served.join("pdf-forms");
    assert_eq!(
        loaded.diagnostics,
        vec![
            warning(
                forms.join("outside"),
                "served",
                "`outside` is a link; links in skills are not followed or served"
            ),
            warning(
                forms.join("secret.md"),
                "served",
                "`secret.md` is a link; links in skills are not followed or served"
            ),
        ]
    );
    let server = capmux::Server::new(loaded.pool, &loaded.config, root.to_path_buf());
    (connect(server, "test").await, served)
}

/// The pool of exactly `roots`, with no diagnostics expected unless the caller checks.
fn pool_of(roots: &[PathBuf], cwd: &Path) -> Pool {
    support::load(roots, "", cwd).pool
}

/// A copy of `served/` without links, as the package `team-skills`, plus a PNG.
fn team_skills(root: &Path) -> PathBuf {
    let dir = root.join("sources/team-skills");
    support::copy_tree(&fixture("served"), &dir);
    std::fs::create_dir_all(dir.join("pdf-forms/assets")).expect("mkdir assets");
    std::fs::write(dir.join("pdf-forms/assets/logo.png"), PNG).expect("write png");
    dir
}

fn names(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Frontmatter variants
// ---------------------------------------------------------------------------------------------

#[test]
fn every_frontmatter_variant_loads_or_is_refused_with_an_exact_diagnostic() {
    let (_tmp, cwd) = tempdir();
    let variants = fixture("variants");
    let loaded = support::load(std::slice::from_ref(&variants), "", &cwd);

    let lenient = "frontmatter is not valid YAML (mapping values are not allowed in this context); it was read line by line";
    let no_description =
        "skill not loaded: it has no `description`; clients choose skills by their descriptions";
    assert_eq!(
        loaded.diagnostics,
        vec![
            warning(
                variants.join("agent-reviewer/SKILL.md"),
                "variants",
                lenient
            )
            .at_line(3),
            error(
                variants.join("draft-only/SKILL.md"),
                "variants",
                no_description
            ),
            error(
                variants.join("empty-description/SKILL.md"),
                "variants",
                no_description
            ),
            warning(
                variants.join("hook-development/SKILL.md"),
                "variants",
                "`name` `Hook Development` breaks the spec: 1-64 lowercase letters, digits and single hyphens"
            ),
            warning(
                variants.join("hook-development/SKILL.md"),
                "variants",
                "`name` `Hook Development` differs from the folder `hook-development`; the skill is served as `hook-development`"
            ),
            error(
                variants.join("plain-readme/SKILL.md"),
                "variants",
                "skill not loaded: SKILL.md must start with a `---` line opening its frontmatter"
            ),
        ]
    );

    assert_eq!(loaded.pool.packages.len(), 1, "one package for the folder");
    let package = &loaded.pool.packages[0].package;
    assert_eq!(package.id, "variants");
    assert_eq!(package.format, Format::Skills);
    assert_eq!(package.source, Source::Explicit);
    let loaded_skills: Vec<(&str, &str)> = package
        .skills
        .iter()
        .map(|s| (s.name.as_str(), s.description.as_str()))
        .collect();
    assert_eq!(
        loaded_skills,
        [
            (
                "agent-reviewer",
                "Use this skill when the user wants a second opinion on code an agent wrote. Examples: <example> Context: The agent has just finished a refactoring user: \"Can you double-check what you changed?\" assistant: \"I'll use the agent-reviewer skill to review the diff.\" </example>"
            ),
            (
                "api-migration",
                "Migrate client code between major versions of the Orbit HTTP API. Use when a build fails after an Orbit upgrade or when the user asks to move from one API version to another. TRIGGER: \"orbit v2\", \"orbit v3\". SKIP: questions about the Orbit CLI."
            ),
            (
                "commit-messages",
                "Write commit messages in the Conventional Commits style. Use when the user asks for a commit message or says 'write the commit'; the subject line stays under 72 characters."
            ),
            (
                "hook-development",
                "This skill should be used when the user asks to \"create a hook\", \"add a PreToolUse hook\" or \"validate tool calls before they run\"."
            ),
            (
                "meeting-notes",
                "Turn a raw meeting transcript into notes with decisions, owners and due dates."
            ),
            (
                "release-notes",
                "Draft release notes from the merged pull requests since the last tag."
            ),
            (
                "spreadsheet-formulas",
                "Write and repair spreadsheet formulas: lookups, date arithmetic and array formulas. Use when the user pastes a formula that returns #N/A, #REF! or #VALUE!, or asks \"how do I sum by month?\""
            ),
            (
                "tidy-imports",
                "Sort and group import statements the way this team does; used by the formatter agent only."
            ),
        ]
    );
}

#[test]
fn frontmatter_keys_are_kept_as_written() {
    let (_tmp, cwd) = tempdir();
    let loaded = support::load(&[fixture("variants")], "", &cwd);
    let package = &loaded.pool.packages[0].package;
    let skill = |name: &str| {
        package
            .skills
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("skill {name}"))
    };
    let frontmatter = |name: &str| Value::Object(skill(name).frontmatter.clone());

    // The block scalar keeps its line breaks in the frontmatter; the description collapses them.
    assert_eq!(
        frontmatter("api-migration"),
        json!({
            "name": "api-migration",
            "description": "Migrate client code between major versions of the Orbit HTTP API.\nUse when a build fails after an Orbit upgrade or when the user asks to move\nfrom one API version to another. TRIGGER: \"orbit v2\", \"orbit v3\".\nSKIP: questions about the Orbit CLI.",
            "license": "MIT",
            "argument-hint": "<from-version> <to-version>",
        })
    );
    // Read line by line: every value a string, the description joined with spaces.
    assert_eq!(
        frontmatter("agent-reviewer"),
        json!({
            "name": "agent-reviewer",
            "description": "Use this skill when the user wants a second opinion on code an agent wrote. Examples: <example> Context: The agent has just finished a refactoring user: \"Can you double-check what you changed?\" assistant: \"I'll use the agent-reviewer skill to review the diff.\" </example>",
            "license": "MIT",
        })
    );
    assert_eq!(
        frontmatter("hook-development"),
        json!({
            "name": "Hook Development",
            "description": "This skill should be used when the user asks to \"create a hook\", \"add a PreToolUse hook\" or \"validate tool calls before they run\".",
            "version": "0.1.0",
        })
    );
    assert_eq!(
        frontmatter("tidy-imports"),
        json!({
            "name": "tidy-imports",
            "description": "Sort and group import statements the way this team does; used by the formatter agent only.",
            "version": "2.1.0",
            "argument-hint": "<path> [--check]",
            "user-invocable": "no",
            "metadata": { "short-description": "Sort and group imports", "owner": "platform-team" },
            "license": "MIT",
        })
    );
    assert!(
        !frontmatter("meeting-notes")
            .as_object()
            .expect("map")
            .contains_key("license")
    );

    let tidy = skill("tidy-imports");
    assert!(!tidy.user_invocable, "`user-invocable: no` is a no");
    assert_eq!(tidy.argument_hint.as_deref(), Some("<path> [--check]"));
    assert!(skill("meeting-notes").user_invocable);
    assert_eq!(
        skill("commit-messages").body,
        body_of(&fixture("variants/commit-messages/SKILL.md"))
    );

    // The lowercase entry file is the skill's entry, served as SKILL.md, and its only file.
    let release = skill("release-notes");
    assert_eq!(release.entry(), "SKILL.md");
    let paths: Vec<(&str, &str)> = release
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.file.as_str()))
        .collect();
    assert_eq!(paths, [("SKILL.md", "skill.md")]);
    let api = skill("api-migration");
    let paths: Vec<&str> = api.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["SKILL.md", "references/changes.md"]);
}

#[tokio::test]
async fn a_skill_that_is_not_user_invocable_has_no_prompt_and_argument_hint_describes_the_argument()
{
    let (_tmp, cwd) = tempdir();
    let server = support::server(&[fixture("variants")], "", &cwd);
    let client = connect(server, "test").await;
    let prompts = client.list_all_prompts().await.expect("prompts");
    let listed: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        listed,
        [
            "compose",
            "system",
            "variants__agent-reviewer",
            "variants__api-migration",
            "variants__commit-messages",
            "variants__hook-development",
            "variants__meeting-notes",
            "variants__release-notes",
            "variants__spreadsheet-formulas",
        ],
        "tidy-imports says `user-invocable: no`"
    );
    let resources = client.list_all_resources().await.expect("resources");
    assert!(
        resources
            .iter()
            .any(|r| r.uri == "skill://variants/tidy-imports/SKILL.md"),
        "it is still a skill"
    );

    let argument = |name: &str| {
        let prompt = prompts.iter().find(|p| p.name == name).expect("prompt");
        let arguments = prompt.arguments.as_ref().expect("arguments");
        assert_eq!(arguments.len(), 1);
        assert_eq!(arguments[0].name, "arguments");
        assert_eq!(arguments[0].required, Some(false));
        arguments[0].description.clone()
    };
    assert_eq!(
        argument("variants__api-migration").as_deref(),
        Some("<from-version> <to-version>")
    );
    assert_eq!(
        argument("variants__meeting-notes").as_deref(),
        Some("what to do with the skill ($ARGUMENTS)")
    );
    let migration = prompts
        .iter()
        .find(|p| p.name == "variants__api-migration")
        .expect("prompt");
    assert_eq!(
        migration.description.as_deref(),
        Some(
            "Migrate client code between major versions of the Orbit HTTP API. Use when a build fails after an Orbit upgrade or when the user asks to move from one API version to another. TRIGGER: \"orbit v2\", \"orbit v3\". SKIP: questions about the Orbit CLI."
        )
    );
    let text = prompt_text(&client, "variants__api-migration", Some("v2 to v3")).await;
    assert!(
        text.contains("Migrate the code in this repository from v2 to v3."),
        "{text}"
    );
}

#[test]
fn a_yaml_error_points_at_its_line_in_skill_md() {
    let (_tmp, cwd) = tempdir();
    let variants = fixture("variants");
    let loaded = support::load(std::slice::from_ref(&variants), "", &cwd);
    let lenient = loaded
        .diagnostics
        .iter()
        .find(|d| d.path == variants.join("agent-reviewer/SKILL.md"))
        .expect("the lenient-read warning");
    // `description: ... Examples:` is line 3 of the file; its `Examples:` ends at column 98.
    assert_eq!(lenient.line, Some(3), "{lenient}");
    assert!(!lenient.message.contains("line 2"), "{lenient}");
}

#[test]
fn an_argument_hint_in_brackets_is_shown_as_written() {
    // Claude Code's documentation writes hints as `argument-hint: [issue-number]`, which YAML
    // reads as a one-item list.
    let (_tmp, root) = tempdir();
    let dir = root.join("fix-issue");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("SKILL.md"),
        "---\nname: fix-issue\ndescription: Fix a GitHub issue by number.\nargument-hint: [issue-number]\n---\nFix issue $ARGUMENTS.\n",
    )
    .expect("write");
    let loaded = support::load(std::slice::from_ref(&dir), "", &root);
    let skill = &loaded.pool.packages[0].package.skills[0];
    assert_eq!(skill.argument_hint.as_deref(), Some("[issue-number]"));
}

// ---------------------------------------------------------------------------------------------
// 2. Skills as packages
// ---------------------------------------------------------------------------------------------

#[test]
fn a_bare_skill_folder_is_a_package_named_after_its_folder() {
    let (_tmp, cwd) = tempdir();
    let loaded = support::load(&[fixture("packages/sql-review")], "", &cwd);
    assert_eq!(loaded.diagnostics, vec![]);
    let active = &loaded.pool.packages[0];
    assert_eq!(active.package.id, "sql-review");
    assert_eq!(active.package.format, Format::Skill);
    assert_eq!(active.namespace, "sql-review");
    let skill = &active.package.skills[0];
    assert_eq!(skill.name, "sql-review");
    let paths: Vec<&str> = skill.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["SKILL.md", "checklist.md"]);
    let public: Vec<&str> = loaded.pool.skills.keys().map(String::as_str).collect();
    assert_eq!(public, ["sql-review__sql-review"]);
    assert!(
        loaded
            .pool
            .resources
            .contains_key("skill://sql-review/sql-review/checklist.md")
    );
}

#[test]
fn a_folder_of_skills_is_one_package_and_a_folder_named_skills_takes_its_parents_name() {
    let (_tmp, cwd) = tempdir();
    let loaded = support::load(
        &[fixture("packages/ops"), fixture("packages/acme/skills")],
        "",
        &cwd,
    );
    assert_eq!(loaded.diagnostics, vec![]);
    let packages: Vec<(&str, Format, &str, Vec<&str>)> = loaded
        .pool
        .packages
        .iter()
        .map(|a| {
            (
                a.package.id.as_str(),
                a.package.format,
                a.namespace.as_str(),
                a.package.skills.iter().map(|s| s.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        packages,
        [
            (
                "acme-skills",
                Format::Skills,
                "acme-skills",
                vec!["deploy-checklist"]
            ),
            (
                "ops",
                Format::Skills,
                "ops",
                vec!["incident-review", "style-guide"]
            ),
        ]
    );
    let public: Vec<&str> = loaded.pool.skills.keys().map(String::as_str).collect();
    assert_eq!(
        public,
        [
            "acme-skills__deploy-checklist",
            "ops__incident-review",
            "ops__style-guide"
        ]
    );
}

#[test]
fn a_native_package_serves_its_skills_folder_and_its_root_skill() {
    let (_tmp, cwd) = tempdir();
    let loaded = support::load(&[fixture("packages/docs-kit")], "", &cwd);
    assert_eq!(loaded.diagnostics, vec![]);
    let active = &loaded.pool.packages[0];
    assert_eq!(active.package.id, "capmux-plugin-docs-kit");
    assert_eq!(active.package.format, Format::Native);
    let skills: Vec<&str> = active
        .package
        .skills
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(skills, ["style-guide", "docs-kit"]);
    let public: Vec<&str> = loaded.pool.skills.keys().map(String::as_str).collect();
    assert_eq!(public, ["docs-kit__docs-kit", "docs-kit__style-guide"]);
    assert_eq!(
        loaded.pool.skills["docs-kit__docs-kit"].uri,
        "skill://docs-kit/docs-kit/SKILL.md"
    );
    assert_eq!(
        loaded.pool.skills["docs-kit__style-guide"].uri,
        "skill://docs-kit/style-guide/SKILL.md"
    );
    // The root skill is the package folder less its manifest and its other skills.
    let root_skill = &active.package.skills[1];
    let files: Vec<&str> = root_skill.files.iter().map(|f| f.path.as_str()).collect();
    assert!(files.contains(&"SKILL.md"), "{files:?}");
    assert!(
        !files
            .iter()
            .any(|f| *f == "package.json" || f.starts_with("skills/")),
        "{files:?}"
    );
}

#[test]
fn capmux_check_accepts_a_skill_folder_and_counts_its_skill() {
    let (_tmp, home) = tempdir();
    let (code, stdout, _) = run(capmux(&home)
        .current_dir(&home)
        .arg("check")
        .arg(fixture("packages/sql-review")));
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        stdout,
        "checked sql-review - (skill): 0 tools, 0 prompts, 0 system prompts, 1 skills, 0 servers, 0 hooks\n0 errors, 0 warnings\n"
    );

    let (code, stdout, _) = run(capmux(&home)
        .current_dir(&home)
        .arg("check")
        .arg(fixture("variants")));
    assert_eq!(code, 1, "three skills are refused: {stdout}");
    assert!(
        stdout.contains(
            "checked variants - (skills): 0 tools, 0 prompts, 0 system prompts, 8 skills, 0 servers, 0 hooks\n"
        ),
        "{stdout}"
    );
    assert!(stdout.ends_with("3 errors, 3 warnings\n"), "{stdout}");
}

#[test]
fn skill_paths_and_skills_dir_in_the_config_are_sources() {
    let (_tmp, root) = tempdir();
    support::copy_tree(&fixture("packages/ops"), &root.join("mine/ops-skills"));
    let project = root.join("project");
    std::fs::create_dir_all(&project).expect("mkdir project");
    let text = format!(
        "user_packages = false\nskill_paths = [\"../mine/ops-skills\", \"{}\"]\nskills_dir = \"{}\"\n",
        fixture("packages/sql-review").display(),
        fixture("packages/acme/skills").display()
    );
    std::fs::create_dir_all(root.join("conf")).expect("mkdir conf");
    let config = Config::parse(&text, &root.join("conf/config.toml")).expect("config");
    let options = Options {
        config: None,
        overrides: Overrides::default(),
        cwd: project,
    };
    let loaded = capmux::load_with(config, &options);
    assert_eq!(loaded.diagnostics, vec![]);
    let packages: Vec<(&str, Source, Vec<&str>)> = loaded
        .pool
        .packages
        .iter()
        .map(|a| {
            (
                a.package.id.as_str(),
                a.package.source,
                a.package.skills.iter().map(|s| s.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        packages,
        [
            ("capmux-skills", Source::Bundled, vec!["deploy-checklist"]),
            (
                "ops-skills",
                Source::Explicit,
                vec!["incident-review", "style-guide"]
            ),
            ("sql-review", Source::Explicit, vec!["sql-review"]),
        ]
    );
    assert_eq!(
        loaded.pool.packages[1].package.root,
        root.join("conf/../mine/ops-skills"),
        "relative to the config file's folder"
    );
}

#[test]
fn the_project_and_user_skill_folders_are_read_by_the_binary() {
    let (_tmp, home) = tempdir();
    let project = home.join("project");
    support::copy_tree(
        &fixture("packages/acme/skills"),
        &project.join(".capmux/skills"),
    );
    support::copy_tree(
        &fixture("packages/sql-review"),
        &home.join("data/capmux/skills/sql-review"),
    );
    let (code, stdout, stderr) =
        run(capmux(&home)
            .current_dir(&project)
            .args(["--no-bundled", "skills", "list"]));
    assert_eq!(code, 0, "{stderr}");
    let line =
        |public: &str, package: &str, uri: &str| format!("{public:<44} {package:<28} {uri}\n");
    assert_eq!(
        stdout,
        format!(
            "{}{}2 skills\n",
            line(
                "project-skills__deploy-checklist",
                "project-skills",
                "skill://project-skills/deploy-checklist/SKILL.md"
            ),
            line(
                "user-skills__sql-review",
                "user-skills",
                "skill://user-skills/sql-review/SKILL.md"
            ),
        )
    );
}

#[test]
fn two_packages_with_a_skill_of_the_same_name_are_both_served_but_only_the_first_is_exported() {
    let (_tmp, root) = tempdir();
    let ops = fixture("packages/ops");
    let docs = fixture("packages/docs-kit");
    let pool = pool_of(&[ops.clone(), docs.clone()], &root);
    for public in ["docs-kit__style-guide", "ops__style-guide"] {
        assert!(pool.skills.contains_key(public), "{public} is served");
        assert!(pool.prompts.contains_key(public), "{public} is a prompt");
    }

    // Same priority: the package id decides (`capmux-plugin-docs-kit` < `ops`).
    let out = root.join("out");
    let report = export::export(&pool, &out).expect("export");
    assert!(report.written.contains(&"style-guide".to_owned()));
    assert_eq!(
        report.diagnostics,
        vec![warning(
            ops.join("style-guide"),
            "ops",
            "skill `style-guide` is not exported: package `capmux-plugin-docs-kit` has a skill of that name and comes first"
        )]
    );
    assert_eq!(
        std::fs::read_to_string(out.join("style-guide/SKILL.md")).expect("exported"),
        std::fs::read_to_string(docs.join("skills/style-guide/SKILL.md")).expect("source")
    );

    // A lower priority number comes first, whatever the id.
    let house = support::package(
        &root,
        "zz-house-style",
        json!({ "manifestVersion": 1, "priority": 10 }),
        &[(
            "skills/style-guide/SKILL.md",
            "---\nname: style-guide\ndescription: The house style for everything we write.\n---\n# House style\n\nShort sentences.\n",
        )],
    );
    let pool = pool_of(&[ops.clone(), docs.clone(), house.clone()], &root);
    assert!(pool.skills.contains_key("zz-house-style__style-guide"));
    let out = root.join("out-priority");
    let report = export::export(&pool, &out).expect("export");
    let shadowed = "skill `style-guide` is not exported: package `zz-house-style` has a skill of that name and comes first";
    assert_eq!(
        report.diagnostics,
        vec![
            warning(
                docs.join("skills/style-guide"),
                "capmux-plugin-docs-kit",
                shadowed
            ),
            warning(ops.join("style-guide"), "ops", shadowed),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(out.join("style-guide/SKILL.md")).expect("exported"),
        std::fs::read_to_string(house.join("skills/style-guide/SKILL.md")).expect("source")
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Through the MCP server
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn instructions_hold_the_skills_index_with_each_skills_name_and_location() {
    let (_tmp, root) = tempdir();
    let (client, _served) = served_client(&root).await;
    let instructions = client
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .expect("instructions");
    assert!(
        instructions.contains("<available_skills>\n<skill>\n<name>served__changelog</name>\n<description>Add an entry to CHANGELOG.md in the Keep a Changelog format.</description>\n<location>skill://served/changelog/SKILL.md</location>\n</skill>\n<skill>\n<name>served__pdf-forms</name>"),
        "{instructions}"
    );
    assert!(
        instructions.contains(
            "<location>skill://served/pdf-forms/SKILL.md</location>\n</skill>\n</available_skills>"
        ),
        "{instructions}"
    );
    assert!(
        instructions.contains("call the `capmux__load_skill` tool with its name"),
        "{instructions}"
    );
    assert!(!instructions.contains("hunter2"));
}

/// A long system prompt beside the bare skill `sql-review`, served under `config`.
async fn long_prompt_client(root: &Path, config: &str) -> String {
    let long: String = (0..200)
        .map(|i| format!("Guideline {i}: prefer small, reviewable changes.\n"))
        .collect();
    let package = support::package(
        root,
        "capmux-plugin-guidelines",
        json!({ "manifestVersion": 1, "systemPrompts": [{ "content": long }] }),
        &[],
    );
    let server = support::server(&[package, fixture("packages/sql-review")], config, root);
    let client = connect(server, "test").await;
    client
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .expect("instructions")
}

const SQL_REVIEW_ENTRY: &str = "<skill>\n<name>sql-review__sql-review</name>\n<description>Review SQL migrations for locking, missing indexes and irreversible changes.</description>\n<location>skill://sql-review/sql-review/SKILL.md</location>\n</skill>\n</available_skills>";

#[tokio::test]
async fn the_skills_index_survives_when_a_long_system_prompt_is_cut() {
    let (_tmp, root) = tempdir();
    let instructions = long_prompt_client(&root, "").await;
    assert!(instructions.len() <= capmux::config::DEFAULT_INSTRUCTIONS_BUDGET);
    assert!(instructions.contains("[truncated:"), "{instructions}");
    assert!(
        instructions.contains("<available_skills>"),
        "{instructions}"
    );
    assert!(instructions.contains(SQL_REVIEW_ENTRY), "{instructions}");
}

/// The instructions a client gets from the guidelines package and the team skills under
/// `budget`.
async fn client_with_budget_instructions(root: &Path, budget: usize) -> String {
    let long: String = (0..200)
        .map(|i| format!("Guideline {i}: prefer small, reviewable changes.\n"))
        .collect();
    let package = support::package(
        root,
        "capmux-plugin-guidelines",
        json!({ "manifestVersion": 1, "systemPrompts": [{ "content": long }] }),
        &[],
    );
    let config = format!("instructions_budget = {budget}\n");
    let server = support::server(&[package, team_skills(root)], &config, root);
    let client = connect(server, "test").await;
    client
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .expect("instructions")
}

#[tokio::test]
async fn a_tight_budget_keeps_the_skills_index_in_brief() {
    let (_tmp, root) = tempdir();
    let long: String = (0..200)
        .map(|i| format!("Guideline {i}: prefer small, reviewable changes.\n"))
        .collect();
    let package = support::package(
        &root,
        "capmux-plugin-guidelines",
        json!({ "manifestVersion": 1, "systemPrompts": [{ "content": long }] }),
        &[],
    );
    let server = support::server(
        &[package, team_skills(&root)],
        "instructions_budget = 900\n",
        &root,
    );
    let client = connect(server, "test").await;
    let instructions = client
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .expect("instructions");
    assert!(instructions.len() <= 900, "{}", instructions.len());
    // Whole when it fits beside a line of the others, else in brief: names and locations.
    for piece in [
        "<available_skills>",
        "<name>team-skills__changelog</name>",
        "<location>skill://team-skills/changelog/SKILL.md</location>",
        "<name>team-skills__pdf-forms</name>",
        "<location>skill://team-skills/pdf-forms/SKILL.md</location>",
        "</available_skills>",
    ] {
        assert!(instructions.contains(piece), "{piece}: {instructions}");
    }
    let brief = client_with_budget_instructions(&root, 600).await;
    assert!(brief.len() <= 600, "{}", brief.len());
    assert!(
        brief.contains(
            "# Skills\n\nLoad a skill with the `capmux__load_skill` tool before a task it fits; their descriptions are in the MCP prompt `system`.\n<available_skills>\n<skill><name>team-skills__changelog</name><location>skill://team-skills/changelog/SKILL.md</location></skill>\n<skill><name>team-skills__pdf-forms</name><location>skill://team-skills/pdf-forms/SKILL.md</location></skill>\n</available_skills>"
        ),
        "{brief}"
    );
    assert!(instructions.contains("Guideline 0:"), "{instructions}");
    let system = prompt_text(&client, "system", None).await;
    assert!(
        system.contains("<description>Add an entry to CHANGELOG.md in the Keep a Changelog format.</description>"),
        "the whole index is in the `system` prompt"
    );
}

#[tokio::test]
async fn the_skills_index_survives_a_small_instructions_budget() {
    let (_tmp, root) = tempdir();
    let instructions = long_prompt_client(&root, "instructions_budget = 600\n").await;
    assert!(instructions.len() <= 600, "{}", instructions.len());
    // Whole or in brief, the index names the skill and where it is.
    for piece in [
        "<available_skills>",
        "<name>sql-review__sql-review</name>",
        "<location>skill://sql-review/sql-review/SKILL.md</location>",
        "</available_skills>",
    ] {
        assert!(instructions.contains(piece), "{piece}: {instructions}");
    }
}

#[tokio::test]
async fn the_server_declares_the_skills_extension_only_when_it_has_skills() {
    let (_tmp, root) = tempdir();
    let (client, _served) = served_client(&root).await;
    let info = client.peer_info().expect("server info");
    let extensions = info.capabilities.extensions.as_ref().expect("extensions");
    assert_eq!(
        extensions.get("io.modelcontextprotocol/skills"),
        Some(&Map::new())
    );
    assert!(info.capabilities.resources.is_some());

    let plain = support::package(
        &root,
        "capmux-plugin-plain",
        json!({ "manifestVersion": 1, "systemPrompts": [{ "content": "Be brief." }] }),
        &[],
    );
    let client = connect(support::server(&[plain], "", &root), "test").await;
    let info = client.peer_info().expect("server info");
    assert!(
        info.capabilities
            .extensions
            .as_ref()
            .is_none_or(|e| !e.contains_key("io.modelcontextprotocol/skills"))
    );
}

#[tokio::test]
async fn every_file_of_every_skill_is_a_resource_whose_content_matches_its_digest() {
    let (_tmp, root) = tempdir();
    let (client, served) = served_client(&root).await;
    let resources = client.list_all_resources().await.expect("resources");
    let listed: Vec<(&str, Option<&str>)> = resources
        .iter()
        .filter(|r| r.uri.starts_with("skill://"))
        .map(|r| (r.uri.as_str(), r.mime_type.as_deref()))
        .collect();
    let mut expected = vec![("skill://served/changelog/SKILL.md", Some("text/markdown"))];
    expected.extend(
        PDF_FORMS_FILES
            .iter()
            .map(|(uri, _, mime)| (*uri, Some(*mime))),
    );
    assert_eq!(listed, expected, "no link is listed");

    let mut on_disk = vec![(
        "skill://served/changelog/SKILL.md",
        served.join("changelog/SKILL.md"),
        "text/markdown",
    )];
    on_disk.extend(
        PDF_FORMS_FILES
            .iter()
            .map(|(uri, rel, mime)| (*uri, served.join("pdf-forms").join(rel), *mime)),
    );
    for (uri, path, mime) in on_disk {
        let bytes = std::fs::read(&path).expect("source file");
        let resource = resources.iter().find(|r| r.uri == uri).expect("listed");
        let meta = resource.meta.as_ref().expect("_meta");
        assert_eq!(meta.0["digest"], json!(sha256(&bytes)), "{uri}");
        assert_eq!(resource.size, Some(bytes.len() as u64), "{uri}");

        let read = client
            .read_resource(ReadResourceRequestParams::new(uri))
            .await
            .expect("resources/read");
        assert_eq!(read.contents.len(), 1);
        let (served_bytes, read_mime, read_meta) = match &read.contents[0] {
            ResourceContents::TextResourceContents {
                uri: read_uri,
                mime_type,
                text,
                meta,
            } => {
                assert_ne!(mime, "image/png", "a PNG is not text");
                assert_eq!(read_uri, uri);
                (text.as_bytes().to_vec(), mime_type, meta)
            }
            ResourceContents::BlobResourceContents {
                uri: read_uri,
                mime_type,
                blob,
                meta,
            } => {
                assert_eq!(mime, "image/png", "{uri} should be text");
                assert_eq!(read_uri, uri);
                (BASE64.decode(blob).expect("base64"), mime_type, meta)
            }
            other => panic!("unexpected contents {other:?}"),
        };
        assert_eq!(served_bytes, bytes, "{uri}");
        assert_eq!(sha256(&served_bytes), meta.0["digest"], "{uri}");
        assert_eq!(read_mime.as_deref(), Some(mime), "{uri}");
        assert_eq!(
            read_meta.as_ref().map(|m| &m.0["digest"]),
            Some(&meta.0["digest"])
        );
    }

    let entry = resources
        .iter()
        .find(|r| r.uri == "skill://served/pdf-forms/SKILL.md")
        .expect("entry");
    assert_eq!(entry.title.as_deref(), Some("served__pdf-forms"));
    assert_eq!(
        entry.description.as_deref(),
        Some(
            "Fill in PDF forms from structured data. Use when the user has a PDF with form fields and the values to put in them."
        )
    );

    for uri in [
        "skill://served/pdf-forms/secret.md",
        "skill://served/pdf-forms/outside/secret.txt",
        "skill://served/pdf-forms/../../outside/secret.txt",
    ] {
        let err = mcp_error(
            client
                .read_resource(ReadResourceRequestParams::new(uri))
                .await
                .expect_err("not a resource"),
        );
        assert_eq!(err.code, ErrorCode::RESOURCE_NOT_FOUND, "{uri}");
        assert!(!err.message.contains("hunter2"));
    }
}

#[tokio::test]
async fn skills_list_and_get_give_the_frontmatter_and_every_files_digest() {
    let (_tmp, root) = tempdir();
    let (client, served) = served_client(&root).await;
    let skills = client.list_all_skills().await.expect("skills/list");
    validate_skills(&skills).expect("the listing keeps SEP-2640's rules");
    let uris: Vec<&str> = skills.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "skill://served/changelog/SKILL.md",
            "skill://served/pdf-forms/SKILL.md"
        ]
    );

    let changelog = &skills[0];
    assert_eq!(changelog.frontmatter.name, "changelog");
    assert_eq!(
        changelog.frontmatter.description,
        "Add an entry to CHANGELOG.md in the Keep a Changelog format."
    );
    assert_eq!(
        Value::Object(changelog.frontmatter.extra.clone()),
        json!({ "argument-hint": "<version> <summary>" })
    );
    assert_eq!(
        changelog.meta.as_ref().map(|m| &m.0["name"]),
        Some(&json!("served__changelog"))
    );

    let forms = &skills[1];
    assert_eq!(forms.frontmatter.name, "pdf-forms");
    assert_eq!(
        Value::Object(forms.frontmatter.extra.clone()),
        json!({ "license": "MIT" })
    );
    let expected: Vec<SkillResource> = PDF_FORMS_FILES
        .iter()
        .map(|(uri, rel, _)| {
            SkillResource::from_bytes(
                *uri,
                &std::fs::read(served.join("pdf-forms").join(rel)).expect("source"),
            )
        })
        .collect();
    assert_eq!(forms.resources, SkillResources::Files(expected));

    let got = client
        .get_skill(GetSkillRequestParams::new(
            "skill://served/pdf-forms/SKILL.md",
        ))
        .await
        .expect("skills/get");
    assert_eq!(&got.skill, forms);

    let err = mcp_error(
        client
            .get_skill(GetSkillRequestParams::new("skill://served/nope/SKILL.md"))
            .await
            .expect_err("unknown skill"),
    );
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS);
    assert!(
        err.message.contains("skill://served/nope/SKILL.md"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_lowercase_skill_md_does_not_break_skills_list() {
    let (_tmp, cwd) = tempdir();
    let client = connect(support::server(&[fixture("variants")], "", &cwd), "test").await;
    let skills = client.list_all_skills().await.expect("skills/list");
    validate_skills(&skills).expect("the listing keeps SEP-2640's rules");
    let release = skills
        .iter()
        .find(|s| s.frontmatter.name == "release-notes")
        .expect("release-notes");
    assert_eq!(release.uri, "skill://variants/release-notes/SKILL.md");
}

#[tokio::test]
async fn each_user_invocable_skill_is_a_prompt_with_its_arguments_filled_in() {
    let (_tmp, root) = tempdir();
    let (client, served) = served_client(&root).await;

    let text = prompt_text(&client, "served__changelog", Some("1.4.0 Faster startup")).await;
    assert_eq!(
        text,
        body_of(&served.join("changelog/SKILL.md")).replace("$ARGUMENTS", "1.4.0 Faster startup")
    );
    assert!(text.contains("under the right heading: 1.4.0 Faster startup\n"));

    let forms_body = body_of(&served.join("pdf-forms/SKILL.md"));
    let text = prompt_text(&client, "served__pdf-forms", Some("use form.pdf")).await;
    assert_eq!(text, format!("{forms_body}\n\nARGUMENTS: use form.pdf"));
    let text = prompt_text(&client, "served__pdf-forms", None).await;
    assert_eq!(text, forms_body, "nothing appended without arguments");

    let err = mcp_error(
        client
            .get_prompt(
                GetPromptRequestParams::new("served__pdf-forms")
                    .with_arguments(args(json!({ "file": "form.pdf" }))),
            )
            .await
            .expect_err("unknown argument"),
    );
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(
        err.message,
        "prompt `served__pdf-forms` has no argument `file`; its one argument is: arguments"
    );

    let prompts = client.list_all_prompts().await.expect("prompts");
    let changelog = prompts
        .iter()
        .find(|p| p.name == "served__changelog")
        .expect("prompt");
    assert_eq!(
        changelog.arguments.as_ref().expect("arguments")[0]
            .description
            .as_deref(),
        Some("<version> <summary>")
    );
}

#[tokio::test]
async fn load_skill_returns_the_body_and_the_files_and_names_the_skills_when_it_is_unknown() {
    let (_tmp, root) = tempdir();
    let (client, served) = served_client(&root).await;
    let tools = client.list_all_tools().await.expect("tools");
    let load = tools
        .iter()
        .find(|t| t.name == "capmux__load_skill")
        .expect("load tool");
    assert_eq!(
        load.input_schema["properties"]["name"]["enum"],
        json!(["served__changelog", "served__pdf-forms"])
    );
    assert!(tools.iter().any(|t| t.name == "capmux__read_skill_file"));

    let result = call(
        &client,
        "capmux__load_skill",
        json!({ "name": "served__pdf-forms" }),
    )
    .await;
    assert_ne!(result.is_error, Some(true));
    assert_eq!(
        text_of(&result),
        format!(
            "<skill_content name=\"served__pdf-forms\">\n{}\n\nSkill directory: skill://served/pdf-forms/\n<skill_resources>\n<file>assets/logo.png</file>\n<file>examples/tax form.txt</file>\n<file>reference.md</file>\n<file>scripts/fill_form.py</file>\n<file>templates/fields.json</file>\n</skill_resources>\n</skill_content>",
            body_of(&served.join("pdf-forms/SKILL.md"))
        )
    );

    let result = call(
        &client,
        "capmux__load_skill",
        json!({ "name": "pdf-forms" }),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(
        text_of(&result),
        "unknown skill `pdf-forms`; the skills are: served__changelog, served__pdf-forms"
    );
}

#[tokio::test]
async fn read_skill_file_reads_listed_files_and_refuses_every_path_that_leaves_the_skill() {
    let (_tmp, root) = tempdir();
    let (client, served) = served_client(&root).await;
    let forms = served.join("pdf-forms");
    let read = |path: &str| {
        call(
            &client,
            "capmux__read_skill_file",
            json!({ "skill": "served__pdf-forms", "path": path }),
        )
    };

    for (asked, file) in [
        ("reference.md", "reference.md"),
        ("scripts/fill_form.py", "scripts/fill_form.py"),
        ("examples/tax form.txt", "examples/tax form.txt"),
        ("./templates//fields.json", "templates/fields.json"),
    ] {
        let result = read(asked).await;
        assert_ne!(result.is_error, Some(true), "{asked}: {}", text_of(&result));
        assert_eq!(
            text_of(&result),
            std::fs::read_to_string(forms.join(file)).expect("source"),
            "{asked}"
        );
    }
    let result = read("assets/logo.png").await;
    assert_ne!(result.is_error, Some(true));
    assert_eq!(
        text_of(&result),
        "`assets/logo.png` is a binary file (image/png, 69 bytes); read the resource skill://served/pdf-forms/assets/logo.png instead"
    );

    let listed = "SKILL.md, assets/logo.png, examples/tax form.txt, reference.md, scripts/fill_form.py, templates/fields.json";
    for (path, message) in [
        (
            "../x",
            "`../x` leaves the skill folder; `..` is not allowed".to_owned(),
        ),
        (
            "/etc/passwd",
            "`/etc/passwd` is absolute; give a path relative to the skill folder, like `reference.md`"
                .to_owned(),
        ),
        (
            "scripts/../../x",
            "`scripts/../../x` leaves the skill folder; `..` is not allowed".to_owned(),
        ),
        (
            "../changelog/SKILL.md",
            "`../changelog/SKILL.md` leaves the skill folder; `..` is not allowed".to_owned(),
        ),
        (
            "secret.md",
            format!("skill `served__pdf-forms` has no file `secret.md`; its files are: {listed}"),
        ),
        (
            "outside/secret.txt",
            format!(
                "skill `served__pdf-forms` has no file `outside/secret.txt`; its files are: {listed}"
            ),
        ),
    ] {
        let result = read(path).await;
        assert_eq!(result.is_error, Some(true), "{path} must be refused");
        assert_eq!(text_of(&result), message, "{path}");
    }

    let result = call(
        &client,
        "capmux__read_skill_file",
        json!({ "skill": "served__nope", "path": "SKILL.md" }),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(
        text_of(&result),
        "unknown skill `served__nope`; the skills are: served__changelog, served__pdf-forms"
    );

    let load = call(
        &client,
        "capmux__load_skill",
        json!({ "name": "served__pdf-forms" }),
    )
    .await;
    assert!(!text_of(&load).contains("secret"), "{}", text_of(&load));
}

#[tokio::test]
async fn a_file_changed_since_loading_is_read_with_the_digest_of_what_is_sent() {
    let (_tmp, root) = tempdir();
    let (client, served) = served_client(&root).await;
    let uri = "skill://served/pdf-forms/reference.md";
    let listed = client
        .list_all_resources()
        .await
        .expect("resources")
        .into_iter()
        .find(|r| r.uri == uri)
        .and_then(|r| r.meta)
        .map(|m| m.0["digest"].clone())
        .expect("listed digest");
    let changed = "# Checkboxes\n\nChanged after loading.\n";
    std::fs::write(served.join("pdf-forms/reference.md"), changed).expect("change");

    let read = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .expect("resources/read");
    let ResourceContents::TextResourceContents { text, meta, .. } = &read.contents[0] else {
        panic!("expected text");
    };
    assert_eq!(text, changed);
    let sent = meta.as_ref().map(|m| m.0["digest"].clone());
    assert_eq!(sent, Some(json!(sha256(changed.as_bytes()))));
    assert_ne!(
        sent,
        Some(listed),
        "a client that checks learns the file changed"
    );
}

#[tokio::test]
async fn a_listed_file_replaced_by_a_link_after_loading_is_refused() {
    let (_tmp, root) = tempdir();
    let (client, served) = served_client(&root).await;
    let reference = served.join("pdf-forms/reference.md");
    std::fs::remove_file(&reference).expect("remove");
    symlink(root.join("outside/secret.txt"), &reference).expect("link");

    let result = call(
        &client,
        "capmux__read_skill_file",
        json!({ "skill": "served__pdf-forms", "path": "reference.md" }),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(
        text_of(&result),
        "`reference.md` is no longer a regular file inside the skill"
    );
    let err = mcp_error(
        client
            .read_resource(ReadResourceRequestParams::new(
                "skill://served/pdf-forms/reference.md",
            ))
            .await
            .expect_err("refused"),
    );
    assert!(!err.message.contains("hunter2"), "{}", err.message);
}

#[tokio::test]
async fn a_listed_folder_replaced_by_a_link_after_loading_is_refused() {
    let (_tmp, root) = tempdir();
    let (client, served) = served_client(&root).await;
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::fs::write(elsewhere.join("fill_form.py"), SECRET).expect("write");
    let scripts = served.join("pdf-forms/scripts");
    std::fs::remove_dir_all(&scripts).expect("remove");
    symlink(&elsewhere, &scripts).expect("link");

    let result = call(
        &client,
        "capmux__read_skill_file",
        json!({ "skill": "served__pdf-forms", "path": "scripts/fill_form.py" }),
    )
    .await;
    assert_eq!(result.is_error, Some(true), "{}", text_of(&result));
    assert!(!text_of(&result).contains("hunter2"));
    let read = client
        .read_resource(ReadResourceRequestParams::new(
            "skill://served/pdf-forms/scripts/fill_form.py",
        ))
        .await;
    if let Ok(read) = read {
        panic!("a file outside the skill was served: {:?}", read.contents);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Export
// ---------------------------------------------------------------------------------------------

/// Every path below `dir` with its inode and modification time.
fn stamps(dir: &Path) -> BTreeMap<String, (u64, i64, i64)> {
    tree(dir)
        .into_keys()
        .map(|rel| {
            let meta = std::fs::symlink_metadata(dir.join(&rel)).expect("metadata");
            (rel, (meta.ino(), meta.mtime(), meta.mtime_nsec()))
        })
        .collect()
}

#[test]
fn export_writes_every_skill_into_an_empty_folder() {
    let (_tmp, root) = tempdir();
    let sources = team_skills(&root);
    let pool = pool_of(std::slice::from_ref(&sources), &root);
    let out = root.join("exported");
    let report = export::export(&pool, &out).expect("export");
    assert_eq!(names(&report.written), ["changelog", "pdf-forms"]);
    assert!(report.unchanged.is_empty() && report.removed.is_empty());
    assert_eq!(report.diagnostics, vec![]);

    for skill in ["changelog", "pdf-forms"] {
        assert_eq!(
            tree(&out.join(skill)),
            tree(&sources.join(skill)),
            "{skill}"
        );
    }
    let top: Vec<String> = std::fs::read_dir(&out)
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        top,
        [
            ".capmux-skills.json",
            ".capmux-skills.lock",
            "changelog",
            "pdf-forms"
        ],
        "no staging folder is left behind"
    );
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(".capmux-skills.json")).expect("record"),
    )
    .expect("record is JSON");
    let recorded: Vec<(&str, &str)> = record["skills"]
        .as_object()
        .expect("skills")
        .iter()
        .map(|(name, w)| (name.as_str(), w["package"].as_str().expect("package")))
        .collect();
    assert_eq!(
        recorded,
        [("changelog", "team-skills"), ("pdf-forms", "team-skills")]
    );
}

#[test]
fn exporting_twice_changes_nothing() {
    let (_tmp, root) = tempdir();
    let sources = team_skills(&root);
    let pool = pool_of(std::slice::from_ref(&sources), &root);
    let out = root.join("exported");
    export::export(&pool, &out).expect("first export");
    let before: BTreeMap<_, _> = ["changelog", "pdf-forms"]
        .iter()
        .map(|s| (*s, (stamps(&out.join(s)), tree(&out.join(s)))))
        .collect();
    let folder_inodes: Vec<u64> = ["changelog", "pdf-forms"]
        .iter()
        .map(|s| std::fs::metadata(out.join(s)).expect("meta").ino())
        .collect();

    let report = export::export(&pool, &out).expect("second export");
    assert_eq!(names(&report.unchanged), ["changelog", "pdf-forms"]);
    assert!(report.written.is_empty() && report.removed.is_empty());
    assert_eq!(report.diagnostics, vec![]);
    let after: BTreeMap<_, _> = ["changelog", "pdf-forms"]
        .iter()
        .map(|s| (*s, (stamps(&out.join(s)), tree(&out.join(s)))))
        .collect();
    assert_eq!(after, before, "same inodes, times and bytes");
    let folder_inodes_after: Vec<u64> = ["changelog", "pdf-forms"]
        .iter()
        .map(|s| std::fs::metadata(out.join(s)).expect("meta").ino())
        .collect();
    assert_eq!(folder_inodes_after, folder_inodes);

    // A fresh load of the same sources is the same export.
    let report = export::export(&pool_of(&[sources], &root), &out).expect("third export");
    assert_eq!(names(&report.unchanged), ["changelog", "pdf-forms"]);
}

#[test]
fn a_skill_folder_the_user_made_is_never_touched() {
    let (_tmp, root) = tempdir();
    let sources = team_skills(&root);
    let out = root.join("exported");
    // The user's own version of `changelog`, and a skill of their own.
    std::fs::create_dir_all(out.join("changelog")).expect("mkdir");
    std::fs::write(
        out.join("changelog/SKILL.md"),
        "---\nname: changelog\ndescription: My own changelog habits.\n---\nMine.\n",
    )
    .expect("write");
    std::fs::create_dir_all(out.join("my-notes/scripts")).expect("mkdir");
    std::fs::write(
        out.join("my-notes/SKILL.md"),
        "---\nname: my-notes\ndescription: Notes.\n---\n",
    )
    .expect("write");
    std::fs::write(out.join("my-notes/scripts/n.sh"), "echo hi\n").expect("write");
    let users_changelog = tree(&out.join("changelog"));
    let users_notes = tree(&out.join("my-notes"));

    let pool = pool_of(std::slice::from_ref(&sources), &root);
    for run in ["first", "second"] {
        let report = export::export(&pool, &out).expect("export");
        assert!(
            !report.written.contains(&"changelog".to_owned())
                && !report.unchanged.contains(&"changelog".to_owned()),
            "{run}"
        );
        assert_eq!(
            report.diagnostics,
            vec![warning(
                sources.join("changelog"),
                "team-skills",
                &format!(
                    "skill `changelog` is not exported: {} exists and was not written by capmux; it is left alone",
                    out.join("changelog").display()
                )
            )],
            "{run}"
        );
        assert_eq!(tree(&out.join("changelog")), users_changelog, "{run}");
        assert_eq!(tree(&out.join("my-notes")), users_notes, "{run}");
        assert_eq!(
            tree(&out.join("pdf-forms")),
            tree(&sources.join("pdf-forms"))
        );
    }
}

#[test]
fn a_skill_holding_a_link_is_not_exported_and_nothing_is_written_for_it() {
    let (_tmp, root) = tempdir();
    let sources = team_skills(&root);
    std::fs::write(root.join("secret.txt"), SECRET).expect("write secret");
    let link = sources.join("pdf-forms/templates/defaults.json");
    symlink(root.join("secret.txt"), &link).expect("link");

    let loaded = support::load(std::slice::from_ref(&sources), "", &root);
    assert_eq!(
        loaded.diagnostics,
        vec![warning(
            &link,
            "team-skills",
            "`templates/defaults.json` is a link; links in skills are not followed or served"
        )]
    );
    let out = root.join("exported");
    let report = export::export(&loaded.pool, &out).expect("export");
    assert_eq!(names(&report.written), ["changelog"]);
    assert_eq!(
        report.diagnostics,
        vec![warning(
            sources.join("pdf-forms"),
            "team-skills",
            &format!(
                "skill `pdf-forms` is not exported: it holds a link ({}), and links are never copied",
                link.display()
            )
        )]
    );
    let written: Vec<String> = tree(&out).into_keys().collect();
    assert_eq!(
        written,
        [
            ".capmux-skills.json",
            ".capmux-skills.lock",
            "changelog",
            "changelog/SKILL.md"
        ]
    );
    for (path, node) in tree(&root) {
        if let Node::File(bytes) = node {
            assert!(
                path == "secret.txt" || !String::from_utf8_lossy(&bytes).contains("hunter2"),
                "{path} holds the secret"
            );
        }
    }
}

#[test]
fn a_frontmatter_name_cannot_steer_where_a_skill_is_written() {
    let (_tmp, root) = tempdir();
    let hostile = root.join("sources/path-name");
    support::copy_tree(&fixture("hostile/path-name"), &hostile);
    let loaded = support::load(std::slice::from_ref(&hostile), "", &root);
    let entry = hostile.join("SKILL.md");
    assert_eq!(
        loaded.diagnostics,
        vec![
            warning(
                &entry,
                "path-name",
                "`name` `../../evil` breaks the spec: 1-64 lowercase letters, digits and single hyphens"
            ),
            warning(
                &entry,
                "path-name",
                "`name` `../../evil` differs from the folder `path-name`; the skill is served as `path-name`"
            ),
        ]
    );
    let out = root.join("deep/down/exported");
    std::fs::create_dir_all(&out).expect("mkdir");
    let outside = |root: &Path| -> BTreeMap<String, Node> {
        tree(root)
            .into_iter()
            .filter(|(path, _)| !path.starts_with("deep/down/exported/"))
            .collect()
    };
    let before = outside(&root);

    let report = export::export(&loaded.pool, &out).expect("export");
    assert_eq!(names(&report.written), ["path-name"]);
    assert_eq!(report.diagnostics, vec![]);
    assert_eq!(outside(&root), before, "nothing was written outside DIR");
    let written: Vec<String> = tree(&out).into_keys().collect();
    assert_eq!(
        written,
        [
            ".capmux-skills.json",
            ".capmux-skills.lock",
            "path-name",
            "path-name/SKILL.md"
        ]
    );
    assert!(!tree(&root).keys().any(|p| p.contains("evil")));
}

#[test]
fn a_link_in_the_export_folder_cannot_make_export_write_outside_it() {
    let (_tmp, root) = tempdir();
    let sources = team_skills(&root);
    let out = root.join("exported");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(root.join("precious.txt"), "my own notes\n").expect("write");
    symlink(root.join("precious.txt"), out.join(".capmux-skills.lock")).expect("link");

    let _ = export::export(&pool_of(std::slice::from_ref(&sources), &root), &out);
    assert_eq!(
        std::fs::read_to_string(root.join("precious.txt")).expect("read"),
        "my own notes\n"
    );
}

#[test]
fn a_skill_gone_from_the_sources_is_removed_only_because_capmux_wrote_it() {
    let (_tmp, root) = tempdir();
    let sources = team_skills(&root);
    let out = root.join("exported");
    export::export(&pool_of(std::slice::from_ref(&sources), &root), &out).expect("export");
    // The user adds a skill of their own beside the exported ones.
    std::fs::create_dir_all(out.join("handmade")).expect("mkdir");
    std::fs::write(
        out.join("handmade/SKILL.md"),
        "---\nname: handmade\ndescription: Mine.\n---\n",
    )
    .expect("write");
    let handmade = tree(&out.join("handmade"));

    std::fs::remove_dir_all(sources.join("changelog")).expect("remove source");
    let report = export::export(&pool_of(std::slice::from_ref(&sources), &root), &out)
        .expect("export again");
    assert_eq!(names(&report.removed), ["changelog"]);
    assert_eq!(names(&report.unchanged), ["pdf-forms"]);
    assert_eq!(report.diagnostics, vec![]);
    assert!(!out.join("changelog").exists());
    assert_eq!(tree(&out.join("handmade")), handmade);
    let record = std::fs::read_to_string(out.join(".capmux-skills.json")).expect("record");
    assert!(!record.contains("changelog"), "{record}");
}

#[test]
fn a_corrupt_record_is_an_error_and_nothing_changes() {
    let (_tmp, root) = tempdir();
    let sources = team_skills(&root);
    let out = root.join("exported");
    export::export(&pool_of(std::slice::from_ref(&sources), &root), &out).expect("export");
    std::fs::write(
        out.join(".capmux-skills.json"),
        "{\"skills\": {\"changelog\": ",
    )
    .expect("corrupt the record");
    // Something to do if the export went ahead: a changed skill and a removed one.
    std::fs::write(sources.join("pdf-forms/reference.md"), "# Changed\n").expect("write");
    std::fs::remove_dir_all(sources.join("changelog")).expect("remove source");
    let before = tree(&out);

    let err = export::export(&pool_of(std::slice::from_ref(&sources), &root), &out)
        .expect_err("a corrupt record stops the export");
    assert!(matches!(err, ExportError::Record { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "the export record {} is corrupt (",
            out.join(".capmux-skills.json").display()
        )),
        "{message}"
    );
    assert!(
        message.ends_with("); fix or remove it, nothing was changed"),
        "{message}"
    );
    assert_eq!(tree(&out), before);
}

#[test]
fn a_changed_skill_is_written_again() {
    let (_tmp, root) = tempdir();
    let sources = team_skills(&root);
    let out = root.join("exported");
    export::export(&pool_of(std::slice::from_ref(&sources), &root), &out).expect("export");

    std::fs::write(
        sources.join("pdf-forms/reference.md"),
        "# Checkboxes\n\nUse `/Yes` and `/Off`.\n",
    )
    .expect("change");
    std::fs::write(sources.join("pdf-forms/forms.md"), "# Forms\n").expect("add");
    std::fs::remove_file(sources.join("pdf-forms/examples/tax form.txt")).expect("delete");
    let report = export::export(&pool_of(std::slice::from_ref(&sources), &root), &out)
        .expect("export again");
    assert_eq!(names(&report.written), ["pdf-forms"]);
    assert_eq!(names(&report.unchanged), ["changelog"]);
    assert_eq!(
        files(&out.join("pdf-forms")),
        files(&sources.join("pdf-forms"))
    );
    assert_eq!(
        std::fs::read_to_string(out.join("pdf-forms/reference.md")).expect("exported"),
        "# Checkboxes\n\nUse `/Yes` and `/Off`.\n"
    );
    assert!(!out.join("pdf-forms/examples/tax form.txt").exists());

    // An exported copy edited by hand is put back: capmux wrote that folder.
    std::fs::write(out.join("changelog/SKILL.md"), "edited\n").expect("edit the copy");
    let report = export::export(&pool_of(std::slice::from_ref(&sources), &root), &out)
        .expect("export again");
    assert_eq!(names(&report.written), ["changelog"]);
    assert_eq!(
        files(&out.join("changelog")),
        files(&sources.join("changelog"))
    );
}

#[test]
fn a_skill_changed_between_loading_and_export_is_not_half_written() {
    let (_tmp, root) = tempdir();
    let sources = team_skills(&root);
    let out = root.join("exported");
    let pool = pool_of(std::slice::from_ref(&sources), &root);
    export::export(&pool, &out).expect("export");
    let before = tree(&out.join("pdf-forms"));

    // A file changes after the pool was loaded: the old pool must not export a mix.
    std::fs::write(sources.join("pdf-forms/reference.md"), "# Changed\n").expect("write");
    std::fs::write(out.join("pdf-forms/SKILL.md"), "edited\n").expect("edit the copy");
    let edited = tree(&out.join("pdf-forms"));
    assert_ne!(edited, before);
    let report = export::export(&pool, &out).expect("export");
    assert_eq!(
        report.diagnostics,
        vec![warning(
            sources.join("pdf-forms"),
            "team-skills",
            "skill `pdf-forms` is not exported: `reference.md` changed since capmux loaded it; run the export again"
        )]
    );
    assert_eq!(tree(&out.join("pdf-forms")), edited, "left as it was");
    assert!(out.join("changelog/SKILL.md").is_file());
}

#[test]
fn capmux_skills_export_writes_then_reports_everything_unchanged() {
    let (_tmp, home) = tempdir();
    let sources = team_skills(&home);
    let export = |home: &Path| {
        run(capmux(home)
            .current_dir(home)
            .arg("--no-bundled")
            .arg("--package")
            .arg(&sources)
            .args(["skills", "export", "--to", "out"]))
    };
    let (code, stdout, stderr) = export(&home);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "written: changelog, pdf-forms\n2 written, 0 unchanged, 0 removed, 0 not exported\n"
    );
    assert_eq!(
        tree(&home.join("out/pdf-forms")),
        tree(&sources.join("pdf-forms"))
    );

    let (code, stdout, stderr) = export(&home);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "unchanged: changelog, pdf-forms\n0 written, 2 unchanged, 0 removed, 0 not exported\n"
    );

    let record = home.join("out/.capmux-skills.json");
    std::fs::write(&record, "not json").expect("corrupt");
    let (code, stdout, stderr) = export(&home);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stderr.starts_with(&format!(
            "capmux: the export record {} is corrupt (",
            record.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&record).expect("record"),
        "not json"
    );
}
