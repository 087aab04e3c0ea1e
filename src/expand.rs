//! `${...}` variables in what a package asks capmux to run: command argv, server args, env
//! and URLs.
//!
//! Known variables: `${pluginRoot}`, `${pluginData}`, `${workspace}`, `${settings.KEY}` and
//! `${env:VAR}` (`${env:VAR:-default}` for a default). An unknown variable or an unset
//! setting is an error, so a command never runs with a hole in its arguments; an unset
//! environment variable expands to its default or to nothing, as in a shell. `$${` is a
//! literal `${`.
//!
//! Other formats' variables (`${CLAUDE_PLUGIN_ROOT}`, `${extensionPath}`, …) are rewritten
//! into these by their readers with [`translate`], so this is the one expander.

use std::path::Path;

use serde_json::{Map, Value};

/// The values variables expand to.
pub struct Vars<'a> {
    pub plugin_root: &'a Path,
    pub plugin_data: &'a Path,
    pub workspace: &'a Path,
    pub settings: &'a Map<String, Value>,
}

/// Expands every `${...}` in `text`.
pub fn expand(text: &str, vars: &Vars<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in `{text}`"))?;
        out.push_str(&lookup(&after[..end], vars)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands every string of an argv; the first failure is the error.
pub fn expand_all(argv: &[String], vars: &Vars<'_>) -> Result<Vec<String>, String> {
    argv.iter().map(|arg| expand(arg, vars)).collect()
}

/// Rewrites each `${name}` of another format: `rename` gives its replacement text (capmux
/// variables, or a literal), and a name it does not know is kept literally (`$${name}`),
/// so nothing of the format's own syntax is expanded by accident.
pub fn translate(text: &str, rename: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str("$${");
            rest = after;
            continue;
        };
        match rename(&after[..end]) {
            Some(replacement) => out.push_str(&replacement),
            None => {
                out.push_str("$${");
                out.push_str(&after[..=end]);
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `text` with every `${` kept literally.
pub fn literal(text: &str) -> String {
    translate(text, |_| None)
}

/// A setting key as part of an environment variable's name: `api-base` is `API_BASE`.
pub fn env_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn lookup(name: &str, vars: &Vars<'_>) -> Result<String, String> {
    match name {
        "pluginRoot" => Ok(vars.plugin_root.display().to_string()),
        "pluginData" => Ok(vars.plugin_data.display().to_string()),
        "workspace" => Ok(vars.workspace.display().to_string()),
        _ => {
            if let Some(key) = name.strip_prefix("settings.") {
                return match vars.settings.get(key) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(other) => Ok(other.to_string()),
                    None => Err(format!("setting `{key}` is not set")),
                };
            }
            if let Some(var) = name.strip_prefix("env:") {
                let (var, default) = var.split_once(":-").unwrap_or((var, ""));
                return Ok(std::env::var(var)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| default.to_owned()));
            }
            Err(format!("unknown variable `${{{name}}}`"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_variables_expand_and_unknown_ones_are_errors() {
        let mut settings = Map::new();
        settings.insert("url".into(), "https://x".into());
        settings.insert("n".into(), 3.into());
        let vars = Vars {
            plugin_root: Path::new("/p"),
            plugin_data: Path::new("/d"),
            workspace: Path::new("/w"),
            settings: &settings,
        };
        assert_eq!(
            expand(
                "${pluginRoot}/a ${settings.url} ${settings.n} ${workspace}${pluginData}",
                &vars
            )
            .as_deref(),
            Ok("/p/a https://x 3 /w/d")
        );
        assert!(
            expand("${settings.token}", &vars)
                .unwrap_err()
                .contains("token")
        );
        assert!(expand("${nope}", &vars).unwrap_err().contains("nope"));
        assert!(expand("${pluginRoot", &vars).is_err());
        assert_eq!(
            expand("${env:CAPMUX_SURELY_UNSET_VAR}x", &vars).as_deref(),
            Ok("x")
        );
        assert_eq!(
            expand("${env:CAPMUX_SURELY_UNSET_VAR:-d f}x", &vars).as_deref(),
            Ok("d fx")
        );
        assert_eq!(expand("$${HOME} $x", &vars).as_deref(), Ok("${HOME} $x"));
    }

    #[test]
    fn translated_text_expands_known_names_and_keeps_the_rest() {
        let settings = Map::new();
        let vars = Vars {
            plugin_root: Path::new("/p"),
            plugin_data: Path::new("/d"),
            workspace: Path::new("/w"),
            settings: &settings,
        };
        let rename = |name: &str| (name == "extensionPath").then(|| "${pluginRoot}".to_owned());
        let text = translate("${extensionPath}/a ${HOME} ${unclosed", rename);
        assert_eq!(text, "${pluginRoot}/a $${HOME} $${unclosed");
        assert_eq!(
            expand(&text, &vars).as_deref(),
            Ok("/p/a ${HOME} ${unclosed")
        );
        assert_eq!(expand(&literal("$x ${y}"), &vars).as_deref(), Ok("$x ${y}"));
    }
}
