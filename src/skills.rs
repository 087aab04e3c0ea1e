//! Serving skills to every client: resource URIs, the index for the system prompt, the
//! prompt of a user-invocable skill, and the two tools for clients that cannot read
//! resources (load a skill; read one of its files).
//!
//! A skill's files are served only from the list made when it was loaded (regular files
//! below its folder, links left out), so a request can only name one of those files: an
//! absolute path, a `..` or a link is refused before anything is opened.

use std::sync::Arc;

use rmcp::model as mcp;
use serde_json::{Map, Value, json};

use crate::package::skill::{Skill, SkillFile};

/// The item names of capmux's own skill tools, under the reserved namespace.
pub const LOAD_TOOL: &str = "load_skill";
pub const READ_TOOL: &str = "read_skill_file";

/// The URI of a skill's file: `skill://<namespace>/<skill>/<path>` (SEP-2640).
pub fn uri(namespace: &str, skill: &str, path: &str) -> String {
    format!("skill://{namespace}/{skill}/{}", encode_path(path))
}

/// Percent-encodes a relative path for a URI, keeping `/` and RFC 3986's unreserved bytes.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The skills index for the system prompt, in the `<available_skills>` form of the Agent
/// Skills reference; `skills` are (public name, description, SKILL.md URI). Without
/// descriptions it is the brief form, one line a skill, for a tight instructions budget.
pub fn index_text(
    skills: &[(String, String, String)],
    load_tool: &str,
    descriptions: bool,
) -> String {
    let mut text = if descriptions {
        format!(
            "Skills are folders of instructions for particular tasks. When a task matches a skill's description, load the skill before starting: call the `{load_tool}` tool with its name, or read its SKILL.md resource.\n\n<available_skills>\n"
        )
    } else {
        format!(
            "Load a skill with the `{load_tool}` tool before a task it fits; their descriptions are in the MCP prompt `system`.\n<available_skills>\n"
        )
    };
    for (name, description, location) in skills {
        let (name, location) = (escape_xml(name), escape_xml(location));
        if descriptions {
            text.push_str(&format!(
                "<skill>\n<name>{name}</name>\n<description>{}</description>\n<location>{location}</location>\n</skill>\n",
                escape_xml(description)
            ));
        } else {
            text.push_str(&format!(
                "<skill><name>{name}</name><location>{location}</location></skill>\n"
            ));
        }
    }
    text.push_str("</available_skills>");
    text
}

/// What loading a skill returns: its instructions and its files.
pub fn load_text(public: &str, skill: &Skill, base_uri: &str) -> String {
    let mut text = format!(
        "<skill_content name=\"{}\">\n{}\n\nSkill directory: {base_uri}\n",
        escape_xml(public),
        skill.body
    );
    let others: Vec<&SkillFile> = skill
        .files
        .iter()
        .filter(|f| f.path != skill.entry())
        .collect();
    if !others.is_empty() {
        text.push_str("<skill_resources>\n");
        for file in others {
            text.push_str(&format!("<file>{}</file>\n", escape_xml(&file.path)));
        }
        text.push_str("</skill_resources>\n");
    }
    text.push_str("</skill_content>");
    text
}

/// The file `path` of `skill` as listed, after refusing paths that could leave it.
pub fn find_file<'s>(skill: &'s Skill, public: &str, path: &str) -> Result<&'s SkillFile, String> {
    let trimmed = path.trim();
    if trimmed.starts_with(['/', '\\']) {
        return Err(format!(
            "`{path}` is absolute; give a path relative to the skill folder, like `reference.md`"
        ));
    }
    let normalized: Vec<&str> = trimmed
        .split(['/', '\\'])
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if normalized.contains(&"..") {
        return Err(format!(
            "`{path}` leaves the skill folder; `..` is not allowed"
        ));
    }
    let wanted = normalized.join("/");
    skill
        .files
        .iter()
        .find(|f| f.path == wanted)
        .ok_or_else(|| {
            let files: Vec<&str> = skill.files.iter().map(|f| f.path.as_str()).collect();
            format!(
                "skill `{public}` has no file `{path}`; its files are: {}",
                files.join(", ")
            )
        })
}

/// Reads a listed file of a skill, checking it is still a regular file inside the folder:
/// a file or a folder on its path swapped for a link since loading is refused.
pub fn read_file(skill: &Skill, file: &SkillFile) -> Result<Vec<u8>, String> {
    let path = skill.dir.join(&file.file);
    let refused = || {
        format!(
            "`{}` is no longer a regular file inside the skill",
            file.path
        )
    };
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|err| format!("cannot read `{}`: {err}", file.path))?;
    let inside = path.canonicalize().is_ok_and(|real| real == path);
    if !meta.is_file() || !inside {
        return Err(refused());
    }
    std::fs::read(&path).map_err(|err| format!("cannot read `{}`: {err}", file.path))
}

/// The text of a skill invoked as a prompt: its body with `$ARGUMENTS`, `$N` and
/// `$ARGUMENTS[N]` filled in as in a slash command (`crate::slash`); when the body has none,
/// given arguments are appended, as Claude Code does.
pub fn prompt_text(skill: &Skill, arguments: &str) -> String {
    let words = crate::slash::split_words(arguments);
    let one_based = crate::slash::one_based(&skill.body);
    crate::slash::fill_slash(&skill.body, arguments, &words, &[], one_based)
}

fn schema(value: Value) -> Arc<Map<String, Value>> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(Map::new()),
    }
}

/// The load tool; `names` are the public skill names it accepts.
pub fn load_tool(public: &str, names: &[String]) -> mcp::Tool {
    let mut name =
        json!({ "type": "string", "description": "The skill's name, as in the skills index" });
    if names.len() <= 200 {
        name["enum"] = json!(names);
    }
    mcp::Tool::new(
        public.to_owned(),
        "Load a skill: its instructions and the list of its files. Use it when a task matches a skill in the skills index.",
        schema(
            json!({ "type": "object", "properties": { "name": name }, "required": ["name"], "additionalProperties": false }),
        ),
    )
}

/// The read-file tool.
pub fn read_tool(public: &str) -> mcp::Tool {
    mcp::Tool::new(
        public.to_owned(),
        "Read one file of a skill (a reference, a script, a template), by the skill's name and the file's path relative to the skill folder.",
        schema(json!({ "type": "object", "properties": {
            "skill": { "type": "string", "description": "The skill's name, as in the skills index" },
            "path": { "type": "string", "description": "The file's path relative to the skill folder, e.g. reference.md" } },
            "required": ["skill", "path"], "additionalProperties": false })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_encoded_but_slashes_kept() {
        assert_eq!(
            encode_path("scripts/fill form.py"),
            "scripts/fill%20form.py"
        );
        assert_eq!(
            uri("skills", "pdf", "SKILL.md"),
            "skill://skills/pdf/SKILL.md"
        );
    }

    #[test]
    fn the_index_escapes_descriptions() {
        let text = index_text(
            &[(
                "a__b".into(),
                "x < y & z".into(),
                "skill://a/b/SKILL.md".into(),
            )],
            "capmux__load_skill",
            true,
        );
        assert!(text.contains("<description>x &lt; y &amp; z</description>"));
    }
}
