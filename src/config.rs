//! capmux's own config file: strict TOML, read once at start.
//!
//! Unlike package files, which are third-party and read leniently, our own config is strict:
//! an unknown key is an error with its line, because a misspelled `grants` that silently did
//! nothing would be worse than a refusal to start. Relative paths in the file are relative
//! to the folder the file is in.
//!
//! Where it is found: `--config PATH` (or `CAPMUX_CONFIG`), else `.capmux/config.toml` in the
//! working directory, else `$XDG_CONFIG_HOME/capmux/config.toml`; none of them is required.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::names;
use crate::package::Permission;

/// Errors that stop capmux from starting: only our own config can cause them.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The config file's contents.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The folder of bundled packages; default `plugins/` in the working directory.
    pub plugins_dir: Option<PathBuf>,
    /// More package roots, or folders of package roots, served with `--package` ones.
    #[serde(default)]
    pub package_paths: Vec<PathBuf>,
    /// The folder of bundled skills; default `skills/` in the working directory.
    pub skills_dir: Option<PathBuf>,
    /// More skill folders or folders of skills, e.g. `~/.agents/skills`, `~/.claude/skills`.
    #[serde(default)]
    pub skill_paths: Vec<PathBuf>,
    /// Whether to read the user's package folder (`$XDG_DATA_HOME/capmux/packages`).
    #[serde(default = "default_true")]
    pub user_packages: bool,
    /// The host's own rules: the first part of the merged system prompt.
    #[serde(default)]
    pub rules: Vec<String>,
    /// A Markdown file of host rules, read after `rules`.
    pub rules_file: Option<PathBuf>,
    /// The longest public name (see `names`); default 51.
    pub name_budget: Option<usize>,
    /// The longest MCP `instructions` text in bytes; default 2048.
    pub instructions_budget: Option<usize>,
    /// Items per page of `tools/list`, `prompts/list` and `resources/list`; default 100.
    pub page_size: Option<usize>,
    /// Where packages keep data (`${pluginData}`); default `$XDG_DATA_HOME/capmux/data`.
    pub data_dir: Option<PathBuf>,
    /// The most bytes of a command tool's output passed on; default 1 MiB.
    pub tool_output_limit: Option<usize>,
    /// How child MCP servers are supervised (`[servers]`).
    #[serde(default)]
    pub servers: ServersConfig,
    /// Per-package settings, keyed by package id (the npm name).
    #[serde(default)]
    pub packages: BTreeMap<String, PackageConfig>,
    /// The folder the file was read from; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file this config came from, for messages.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// What the user says about one package.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageConfig {
    /// The namespace its items are served under, instead of the one derived from its id.
    pub namespace: Option<String>,
    /// Permissions granted to the package, e.g. `["shell:execute"]`.
    #[serde(default)]
    pub grants: Vec<String>,
    /// Values of the package's settings.
    #[serde(default)]
    pub settings: BTreeMap<String, Value>,
    /// `false` keeps the package loaded but serves none of its items.
    pub enabled: Option<bool>,
}

/// Timeouts and limits of child MCP servers, in seconds; every one has a default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServersConfig {
    /// The handshake (spawn, initialize, first listing) of one child; default 30.
    pub startup_timeout: Option<f64>,
    /// How long `initialize` waits for the children before answering without the slow
    /// ones (they join with `list_changed`); default 5.
    pub startup_wait: Option<f64>,
    /// A request's idle timeout, reset by progress; default 60. A server's own `timeout`
    /// (milliseconds) overrides it.
    pub request_timeout: Option<f64>,
    /// The most a request may take, progress or not; default 600.
    pub max_request_timeout: Option<f64>,
    /// Restarts in a row before a crashing child is left failed; default 5.
    pub max_restarts: Option<u32>,
}

fn default_true() -> bool {
    true
}

pub const DEFAULT_INSTRUCTIONS_BUDGET: usize = 2048;
pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const DEFAULT_TOOL_OUTPUT_LIMIT: usize = 1024 * 1024;

impl Config {
    /// Parses `text` as the config file at `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut config: Config = toml::from_str(text).map_err(|err| {
            let line = err
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let message = err.message().to_owned();
            invalid(match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            })
        })?;
        for (id, package) in &config.packages {
            for grant in &package.grants {
                if Permission::parse(grant).is_none() {
                    return Err(invalid(format!(
                        "packages.\"{id}\".grants: unknown permission `{grant}`"
                    )));
                }
            }
            if let Some(ns) = &package.namespace
                && (!names::is_valid(ns) || ns.contains(names::SEPARATOR) || ns.ends_with('_'))
            {
                return Err(invalid(format!(
                    "packages.\"{id}\".namespace: `{ns}` must start with a letter, use A-Z a-z 0-9 _ - and hold no `__`"
                )));
            }
        }
        if let Some(budget) = config.name_budget
            && budget < names::MIN_BUDGET
        {
            return Err(invalid(format!(
                "name_budget: {budget} is too small; the least is {}",
                names::MIN_BUDGET
            )));
        }
        if config.page_size == Some(0) {
            return Err(invalid("page_size: must be at least 1".into()));
        }
        // Absolute, so that paths derived from it (`data_dir`) mean the same thing in a tool
        // that runs in its package root.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.path = Some(path);
        Ok(config)
    }

    /// Reads the config file at `path`.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Finds and reads the config: `explicit` if given, else the first file that exists
    /// among the project's and the user's; the defaults when there is none.
    pub fn find(explicit: Option<&Path>, cwd: &Path) -> Result<Config, ConfigError> {
        if let Some(path) = explicit {
            return Config::read(path);
        }
        let candidates = [
            Some(cwd.join(".capmux").join("config.toml")),
            config_home().map(|dir| dir.join("capmux").join("config.toml")),
        ];
        for path in candidates.into_iter().flatten() {
            if path.is_file() {
                return Config::read(&path);
            }
        }
        Ok(Config {
            user_packages: true,
            base_dir: cwd.to_path_buf(),
            ..Config::default()
        })
    }

    /// `path` resolved against the config file's folder; a leading `~/` is the home folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if let Ok(rest) = path.strip_prefix("~")
            && let Some(home) = home()
        {
            return home.join(rest);
        }
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    pub fn name_budget(&self) -> usize {
        self.name_budget.unwrap_or(names::DEFAULT_BUDGET)
    }

    pub fn instructions_budget(&self) -> usize {
        self.instructions_budget
            .unwrap_or(DEFAULT_INSTRUCTIONS_BUDGET)
    }

    pub fn page_size(&self) -> usize {
        self.page_size.unwrap_or(DEFAULT_PAGE_SIZE)
    }

    pub fn tool_output_limit(&self) -> usize {
        self.tool_output_limit.unwrap_or(DEFAULT_TOOL_OUTPUT_LIMIT)
    }

    /// Where `${pluginData}` folders live.
    pub fn data_dir(&self) -> PathBuf {
        match &self.data_dir {
            Some(dir) => self.resolve(dir),
            None => data_home()
                .unwrap_or_else(std::env::temp_dir)
                .join("capmux")
                .join("data"),
        }
    }

    /// The settings of package `id`, if the user wrote any.
    pub fn package(&self, id: &str) -> Option<&PackageConfig> {
        self.packages.get(id)
    }

    /// Where the message for a missing setting or grant tells the user to write it.
    pub fn location(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => "the config file (.capmux/config.toml)".into(),
        }
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `$XDG_DATA_HOME`, else `~/.local/share`.
pub fn data_home() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".local").join("share")))
}

/// `$XDG_CONFIG_HOME`, else `~/.config`.
pub fn config_home() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".config")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_with_their_line() {
        let err = Config::parse("rules = []\ngrant = 1\n", Path::new("c.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("grant"), "{text}");
    }

    #[test]
    fn unknown_grants_are_refused() {
        let text = "[packages.x]\ngrants = [\"shell:everything\"]\n";
        let err = Config::parse(text, Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("shell:everything"));
    }

    #[test]
    fn settings_and_paths_are_read() {
        let text = r#"
            plugins_dir = "p"
            rules = ["be brief"]
            [packages."capmux-plugin-notes"]
            grants = ["shell:execute"]
            settings = { signing_key = "k", max_notes = 5 }
        "#;
        let config = Config::parse(text, Path::new("/etc/capmux/config.toml")).expect("valid");
        assert_eq!(
            config.resolve(Path::new("p")),
            PathBuf::from("/etc/capmux/p")
        );
        let notes = config.package("capmux-plugin-notes").expect("package");
        assert_eq!(notes.settings["max_notes"], serde_json::json!(5));
        assert!(config.user_packages);
    }
}
