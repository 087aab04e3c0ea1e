//! Agent Skills: a folder with a `SKILL.md` (YAML frontmatter, then Markdown), read into a
//! `Skill` with the list of its files and their SHA-256 digests.
//!
//! Real skills hold YAML that strict parsers reject (an unquoted description running over
//! several lines, some of which look like `Key: value`). The frontmatter is parsed as YAML
//! first; when that fails it is read line by line, where a line that does not start a known
//! key continues the previous value, as the Agent Skills client guide recommends. The spec's
//! rules (name charset and length, name = folder, description length) are warnings, because
//! real clients load such skills anyway; a skill with no usable description is skipped.
//!
//! A skill is served under its folder's name, never the frontmatter's, so a hostile
//! `name: ../../x` cannot steer where anything is read or written. Links inside a skill are
//! never followed: they are reported and left out of its files.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use yaml_rust2::{Yaml, YamlLoader};

use crate::diagnostic::Diagnostic;
use crate::names;

/// The entry file of a skill, and the lowercase name the reference library accepts too.
pub const SKILL_MD: &str = "SKILL.md";
const SKILL_MD_LOWER: &str = "skill.md";

/// Caps on what one skill may hold; a file over them is left out with a warning.
pub const MAX_FILES: usize = 1000;
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Longest name and description the spec allows.
const MAX_NAME: usize = 64;
const MAX_DESCRIPTION: usize = 1024;

/// Frontmatter keys that start a value in the lenient reader: the spec's, Claude Code's and
/// Codex's.
const KNOWN_KEYS: &[&str] = &[
    "name",
    "description",
    "license",
    "compatibility",
    "metadata",
    "allowed-tools",
    "argument-hint",
    "arguments",
    "when_to_use",
    "when-to-use",
    "user-invocable",
    "disable-model-invocation",
    "model",
    "effort",
    "context",
    "agent",
    "hooks",
    "paths",
    "shell",
    "version",
];

/// One file of a skill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkillFile {
    /// Relative to the skill folder, with `/` separators, as served: a lowercase
    /// `skill.md` is served as `SKILL.md`, the name every client looks for.
    pub path: String,
    /// Where it is on disk, relative to the skill folder.
    pub file: String,
    pub size: u64,
    /// `sha256:` and 64 lowercase hex digits.
    pub digest: String,
    pub mime: &'static str,
}

/// A skill as loaded.
#[derive(Debug, Clone, Serialize)]
pub struct Skill {
    /// The name it is served under: its folder's name.
    pub name: String,
    /// The folder, canonical.
    pub dir: PathBuf,
    pub description: String,
    /// Every frontmatter key as written (unknown ones kept as metadata).
    pub frontmatter: Map<String, Value>,
    /// The Markdown after the frontmatter.
    pub body: String,
    /// Its files, `SKILL.md` included, sorted by path.
    pub files: Vec<SkillFile>,
    /// Whether users may invoke it as a prompt (`user-invocable: false` says no).
    pub user_invocable: bool,
    /// What to type after the skill's name (`argument-hint`).
    pub argument_hint: Option<String>,
}

impl Skill {
    /// The entry file as served.
    pub fn entry(&self) -> &str {
        SKILL_MD
    }
}

/// The entry file of the skill in `dir`, if it is one.
pub fn find_entry(dir: &Path) -> Option<PathBuf> {
    [SKILL_MD, SKILL_MD_LOWER]
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// Whether `dir` holds skill folders (`<name>/SKILL.md`) and no package roots: a folder
/// of packages whose one package has a root SKILL.md is still a folder of packages.
pub fn is_collection(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.iter().any(|d| find_entry(d).is_some())
        && !dirs
            .iter()
            .any(|d| d.join(super::native::MANIFEST).is_file())
}

/// Loads every `<name>/SKILL.md` below `dir`, in name order.
pub fn load_collection(dir: &Path, package: &str, diagnostics: &mut Vec<Diagnostic>) -> Vec<Skill> {
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect(),
        Err(err) => {
            diagnostics.push(
                Diagnostic::error(dir, format!("cannot read skills folder: {err}"))
                    .in_package(package),
            );
            return Vec::new();
        }
    };
    dirs.sort();
    dirs.iter()
        .filter_map(|d| match find_entry(d) {
            Some(_) => load(d, package, diagnostics),
            None => {
                diagnostics.push(
                    Diagnostic::warning(d, "no SKILL.md in this folder; it is not a skill")
                        .in_package(package),
                );
                None
            }
        })
        .collect()
}

/// Loads the skill in `dir`; `None` (with an error) when it cannot be served.
pub fn load(dir: &Path, package: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<Skill> {
    load_skipping(dir, &[], package, diagnostics)
}

/// Loads the skill in `dir` leaving out the top-level entries `skip`: a package whose root is
/// also a skill keeps its manifest, dependencies and other skills out of the skill's files.
pub fn load_skipping(
    dir: &Path,
    skip: &[&str],
    package: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Skill> {
    let Some(entry) = find_entry(dir) else {
        diagnostics.push(Diagnostic::error(dir, "no SKILL.md in this folder").in_package(package));
        return None;
    };
    let mut report = |d: Diagnostic| diagnostics.push(d.in_package(package));
    let dir = match dir.canonicalize() {
        Ok(dir) => dir,
        Err(err) => {
            report(Diagnostic::error(
                dir,
                format!("cannot read skill folder: {err}"),
            ));
            return None;
        }
    };
    let text = match super::read::read_text(&entry) {
        Ok(text) => text,
        Err(err) => {
            report(Diagnostic::error(&entry, err));
            return None;
        }
    };
    let folder = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match names::sanitize_item(&folder) {
        Ok((name, false)) => name,
        Ok((name, true)) => {
            report(Diagnostic::warning(
                &entry,
                format!(
                    "skill folder `{folder}` may only use A-Z a-z 0-9 _ - in a name; the skill is served as `{name}`"
                ),
            ));
            name
        }
        Err(err) => {
            report(Diagnostic::error(
                &entry,
                format!("skill folder name cannot be made valid: {err}"),
            ));
            return None;
        }
    };
    let (frontmatter, body) = match parse(&text) {
        Ok(Parsed {
            frontmatter,
            body,
            lenient,
        }) => {
            if let Some(YamlError { reason, line }) = lenient {
                let mut warning = Diagnostic::warning(
                    &entry,
                    format!("frontmatter is not valid YAML ({reason}); it was read line by line"),
                );
                warning.line = line;
                report(warning);
            }
            (frontmatter, body)
        }
        Err(err) => {
            report(Diagnostic::error(
                &entry,
                format!("skill not loaded: {err}"),
            ));
            return None;
        }
    };

    let description = frontmatter
        .get("description")
        .and_then(Value::as_str)
        .map(collapse_whitespace)
        .unwrap_or_default();
    if description.is_empty() {
        report(Diagnostic::error(
            &entry,
            "skill not loaded: it has no `description`; clients choose skills by their descriptions",
        ));
        return None;
    }
    if description.chars().count() > MAX_DESCRIPTION {
        report(Diagnostic::warning(
            &entry,
            format!(
                "`description` is {} characters; the spec allows {MAX_DESCRIPTION}",
                description.chars().count()
            ),
        ));
    }
    match frontmatter.get("name") {
        None => report(Diagnostic::warning(
            &entry,
            format!("no `name`; the folder name `{name}` is used"),
        )),
        Some(Value::String(declared)) => {
            if !is_spec_name(declared) {
                report(Diagnostic::warning(
                    &entry,
                    format!(
                        "`name` `{declared}` breaks the spec: 1-{MAX_NAME} lowercase letters, digits and single hyphens"
                    ),
                ));
            }
            if *declared != folder {
                report(Diagnostic::warning(
                    &entry,
                    format!(
                        "`name` `{declared}` differs from the folder `{folder}`; the skill is served as `{name}`"
                    ),
                ));
            }
        }
        Some(other) => report(Diagnostic::warning(
            &entry,
            format!("`name` is not a string ({other}); the folder name `{name}` is used"),
        )),
    }

    let user_invocable = frontmatter
        .get("user-invocable")
        .and_then(truthy)
        .unwrap_or(true);
    // `argument-hint: [issue-number]` is YAML for a list; it means the text as written.
    let argument_hint = frontmatter.get("argument-hint").map(|v| match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    });
    let files = list_files(&dir, skip, &mut report);
    Some(Skill {
        name,
        dir,
        description,
        frontmatter,
        body,
        files,
        user_invocable,
        argument_hint,
    })
}

/// A frontmatter and body as parsed; `lenient` says why strict YAML failed, if it did.
#[derive(Debug)]
pub struct Parsed {
    pub frontmatter: Map<String, Value>,
    pub body: String,
    pub lenient: Option<YamlError>,
}

/// Why strict YAML failed, and where in the SKILL.md (1-based line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub reason: String,
    pub line: Option<usize>,
}

/// Splits a SKILL.md into its frontmatter and body.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    if lines.next().map(str::trim_end) != Some("---") {
        return Err("SKILL.md must start with a `---` line opening its frontmatter".into());
    }
    let mut yaml = String::new();
    let mut closed = false;
    for line in lines.by_ref() {
        if line.trim_end() == "---" {
            closed = true;
            break;
        }
        yaml.push_str(line);
    }
    if !closed {
        return Err("the frontmatter is never closed by a `---` line".into());
    }
    let body: String = lines.collect();
    let body = body.trim().to_owned();
    match strict(&yaml) {
        Ok(frontmatter) => Ok(Parsed {
            frontmatter,
            body,
            lenient: None,
        }),
        Err(error) => {
            let frontmatter = lenient(&yaml);
            if frontmatter.is_empty() {
                let at = error
                    .line
                    .map(|l| format!(" (line {l})"))
                    .unwrap_or_default();
                return Err(format!(
                    "the frontmatter cannot be read: {}{at}",
                    error.reason
                ));
            }
            Ok(Parsed {
                frontmatter,
                body,
                lenient: Some(error),
            })
        }
    }
}

fn strict(yaml: &str) -> Result<Map<String, Value>, YamlError> {
    // The frontmatter starts on the SKILL.md's second line, after `---`.
    let docs = YamlLoader::load_from_str(yaml).map_err(|e| YamlError {
        reason: e.info().to_owned(),
        line: Some(e.marker().line() + 1),
    })?;
    match docs.into_iter().next() {
        None => Ok(Map::new()),
        Some(Yaml::Hash(hash)) => Ok(hash
            .into_iter()
            .filter_map(|(k, v)| Some((yaml_key(&k)?, to_json(v))))
            .collect()),
        Some(_) => Err(YamlError {
            reason: "the frontmatter is not a mapping of keys to values".into(),
            line: None,
        }),
    }
}

fn yaml_key(key: &Yaml) -> Option<String> {
    match key {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn to_json(yaml: Yaml) -> Value {
    match yaml {
        Yaml::String(s) => Value::String(s),
        Yaml::Integer(i) => Value::from(i),
        Yaml::Real(r) => r.parse::<f64>().ok().map_or(Value::String(r), Value::from),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Yaml::Hash(hash) => Value::Object(
            hash.into_iter()
                .filter_map(|(k, v)| Some((yaml_key(&k)?, to_json(v))))
                .collect(),
        ),
        Yaml::Null | Yaml::Alias(_) | Yaml::BadValue => Value::Null,
    }
}

/// The line reader for frontmatter strict YAML rejects: a line `key: value` whose key is
/// known starts a value; any other line continues the previous value. Quotes around a
/// whole value and `|`/`>` block markers are dropped.
fn lenient(yaml: &str) -> Map<String, Value> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in yaml.lines() {
        let starts_key = line
            .split_once(':')
            .filter(|(key, _)| !key.starts_with([' ', '\t']) && KNOWN_KEYS.contains(&key.trim()));
        match starts_key {
            Some((key, value)) => entries.push((key.trim().to_owned(), value.trim().to_owned())),
            None => {
                if let Some((_, value)) = entries.last_mut() {
                    let line = line.trim();
                    if !line.is_empty() {
                        if !value.is_empty() {
                            value.push(' ');
                        }
                        value.push_str(line);
                    }
                }
            }
        }
    }
    entries
        .into_iter()
        .map(|(key, value)| {
            let value = value
                .trim_start_matches(['|', '>', '-', '+'])
                .trim()
                .to_owned();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                .map(str::to_owned)
                .unwrap_or(value);
            (key, Value::String(unquoted))
        })
        .collect()
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Claude Code reads `yes/no/on/off/1/0` as booleans in skill frontmatter.
fn truthy(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The spec's rule for names: 1-64 of `a-z 0-9 -`, no leading, trailing or double hyphen.
fn is_spec_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// Every regular file below `dir` (hidden ones and the top-level names in `skip` left out),
/// with digests; links are reported and never followed.
fn list_files(dir: &Path, skip: &[&str], report: &mut impl FnMut(Diagnostic)) -> Vec<SkillFile> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            report(Diagnostic::warning(
                &folder,
                "cannot read this folder of the skill; its files are not served",
            ));
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || (folder == dir && skip.contains(&name.as_str())) {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let rel = relative(dir, &path);
            if kind.is_symlink() {
                report(Diagnostic::warning(
                    &path,
                    format!("`{rel}` is a link; links in skills are not followed or served"),
                ));
            } else if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                if files.len() >= MAX_FILES {
                    report(Diagnostic::warning(
                        &path,
                        format!("the skill has over {MAX_FILES} files; `{rel}` is not served"),
                    ));
                    continue;
                }
                match std::fs::read(&path) {
                    Ok(bytes) if bytes.len() as u64 > MAX_FILE_BYTES => {
                        report(Diagnostic::warning(
                            &path,
                            format!(
                                "`{rel}` is {} bytes; skill files are capped at {MAX_FILE_BYTES}; not served",
                                bytes.len()
                            ),
                        ))
                    }
                    Ok(bytes) => files.push(SkillFile {
                        mime: mime_type(&rel),
                        size: bytes.len() as u64,
                        digest: digest(&bytes),
                        path: if rel == SKILL_MD_LOWER {
                            SKILL_MD.to_owned()
                        } else {
                            rel.clone()
                        },
                        file: rel,
                    }),
                    Err(err) => report(Diagnostic::warning(
                        &path,
                        format!("cannot read `{rel}`: {err}; not served"),
                    )),
                }
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// `sha256:` and the hex digest of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The MIME type of a skill file, by its extension.
pub fn mime_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "md" | "markdown" => "text/markdown",
        "txt" | "text" => "text/plain",
        "py" => "text/x-python",
        "js" | "mjs" | "cjs" => "text/javascript",
        "ts" => "text/x-typescript",
        "sh" | "bash" => "text/x-shellscript",
        "json" => "application/json",
        "yaml" | "yml" => "application/yaml",
        "toml" => "application/toml",
        "xml" | "xsd" => "application/xml",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "woff2" => "font/woff2",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Whether a file of this MIME type is served as text.
pub fn is_text(mime: &str) -> bool {
    mime.starts_with("text/")
        || matches!(
            mime,
            "application/json"
                | "application/yaml"
                | "application/toml"
                | "application/xml"
                | "image/svg+xml"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_yaml_with_a_block_scalar() {
        let parsed = parse("---\nname: pdf\ndescription: |-\n  Use for PDFs.\n  Also forms.\nlicense: MIT\n---\n# PDF\n").unwrap();
        assert_eq!(
            parsed.frontmatter["description"],
            "Use for PDFs.\nAlso forms."
        );
        assert_eq!(parsed.body, "# PDF");
        assert!(parsed.lenient.is_none());
    }

    #[test]
    fn unquoted_multi_line_descriptions_with_colons_are_read_leniently() {
        // The shape of anthropics/claude-code's plugin-dev agent-creator.md.
        let text = "---\nname: agent-creator\ndescription: Use this agent to create agents. Examples:\n<example>\nContext: The user wants a reviewer\nuser: \"Create a code reviewer\"\n</example>\nmodel: inherit\n---\nbody\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.lenient.as_ref().and_then(|e| e.line), Some(3));
        assert_eq!(
            parsed.frontmatter["description"],
            "Use this agent to create agents. Examples: <example> Context: The user wants a reviewer user: \"Create a code reviewer\" </example>"
        );
        assert_eq!(parsed.frontmatter["model"], "inherit");
        assert_eq!(parsed.frontmatter["name"], "agent-creator");
    }

    #[test]
    fn a_file_without_frontmatter_is_refused() {
        assert!(
            parse("# just markdown\n")
                .unwrap_err()
                .contains("must start with")
        );
        assert!(
            parse("---\nname: x\n")
                .unwrap_err()
                .contains("never closed")
        );
    }

    #[test]
    fn spec_names() {
        assert!(is_spec_name("pdf-tools"));
        assert!(!is_spec_name("Hook Development"));
        assert!(!is_spec_name("a--b"));
        assert!(!is_spec_name("-a"));
    }
}
