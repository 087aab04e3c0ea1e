//! `capmux new NAME`: a new native package that passes `capmux check` as it is, with one
//! of each thing a package usually starts with: a system prompt, a prompt template, a
//! command tool (Python, standard library only), a skill and a README.
//!
//! The folder is written in a temporary sibling and renamed into place, so a failed run
//! leaves nothing half-written, and an existing folder is never touched.

use std::path::{Path, PathBuf};

use serde_json::json;

/// Why a package could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "`{0}` is not a usable package name: use lowercase letters, digits and single hyphens, starting with a letter"
    )]
    Name(String),
    #[error("{0} exists already; choose another name or folder")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Creates the package `name` as `parent/<name>`; returns its folder.
pub fn create(parent: &Path, name: &str) -> Result<PathBuf, ScaffoldError> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !valid {
        return Err(ScaffoldError::Name(name.to_owned()));
    }
    let target = parent.join(name);
    if target.symlink_metadata().is_ok() {
        return Err(ScaffoldError::Exists(target));
    }
    let stage = parent.join(format!(".{name}.capmux-new-{}", std::process::id()));
    let result = write_files(&stage, name).and_then(|()| {
        std::fs::rename(&stage, &target).map_err(|source| ScaffoldError::Write {
            path: target.clone(),
            source,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&stage);
    }
    result.map(|()| target)
}

fn write_files(root: &Path, name: &str) -> Result<(), ScaffoldError> {
    let title: String = name
        .split('-')
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let manifest = json!({
        "name": format!("capmux-plugin-{name}"),
        "version": "0.1.0",
        "description": format!("{title}: capabilities for every agent, served by capmux"),
        "license": "MIT",
        "capmux": {
            "manifestVersion": 1,
            "displayName": title,
            "category": "other",
            "permissions": ["shell:execute"],
            "systemPrompts": [{ "file": "prompts/system.md" }],
            "prompts": [{
                "name": "hello",
                "description": "Write a short, friendly greeting",
                "file": "prompts/hello.md",
                "arguments": [{ "name": "who", "description": "whom to greet", "required": true }]
            }],
            "tools": [{
                "name": "greet",
                "description": "Greet someone by name. Use it when the user asks for a greeting.",
                "inputSchema": {
                    "type": "object",
                    "properties": { "who": { "type": "string", "description": "the name to greet" } },
                    "required": ["who"],
                    "additionalProperties": false
                },
                "command": ["python3", "tools/greet.py"],
                "timeoutMs": 10000
            }],
            "skills": "skills/"
        }
    });
    let manifest = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
    let files: [(&str, String); 6] = [
        ("package.json", manifest),
        (
            "prompts/system.md",
            format!(
                "{title}: when the user asks for a greeting, use the `greet` tool rather than writing one yourself.\n"
            ),
        ),
        (
            "prompts/hello.md",
            "Write a short, friendly greeting for {{who}}. One sentence.\n".into(),
        ),
        ("tools/greet.py", GREET_PY.into()),
        (
            &format!("skills/{name}-guide/SKILL.md"),
            format!(
                "---\nname: {name}-guide\ndescription: How to work with the {title} package. Use when the user asks what {title} can do or how to extend it.\n---\n\n# {title}\n\nThe package offers the `greet` tool and the `hello` prompt. Edit `package.json` to add more, then run `capmux check .` in the package folder.\n"
            ),
        ),
        ("README.md", readme(name, &title)),
    ];
    for (rel, content) in &files {
        let path = root.join(rel);
        let parent = path.parent().unwrap_or(root);
        std::fs::create_dir_all(parent).map_err(|source| ScaffoldError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
        std::fs::write(&path, content).map_err(|source| ScaffoldError::Write { path, source })?;
    }
    Ok(())
}

const GREET_PY: &str = r#""""The `greet` tool: its arguments arrive as one JSON object on stdin; one JSON
object on stdout is the result (capmux's ToolResult)."""
import json
import sys


def main() -> None:
    try:
        args = json.load(sys.stdin)
    except json.JSONDecodeError as err:
        print(json.dumps({"success": False, "error": f"arguments are not JSON: {err}"}))
        return
    who = str(args.get("who", "")).strip()
    if not who:
        print(json.dumps({"success": False, "error": "give `who`, the name to greet"}))
        return
    text = f"Hello, {who}!"
    print(json.dumps({"success": True, "data": {"greeting": text},
                      "display": {"type": "text", "content": text}}))


if __name__ == "__main__":
    main()
"#;

fn readme(name: &str, title: &str) -> String {
    format!(
        "# {title}\n\nA capmux package (`capmux-plugin-{name}`): a system prompt, the prompt `hello`, the command tool `greet` and the skill `{name}-guide`.\n\n## Try it\n\n```bash\ncapmux check .\necho '{{\"who\": \"Ada\"}}' | python3 tools/greet.py\n```\n\nPackages outside capmux's bundled `plugins/` need their grants in capmux's config file:\n\n```toml\n[packages.\"capmux-plugin-{name}\"]\ngrants = [\"shell:execute\"]\n```\n\nThen `capmux --package . call {name}__greet '{{\"who\": \"Ada\"}}'`, or connect a client to `capmux --package /path/to/{name} serve`.\n"
    )
}
