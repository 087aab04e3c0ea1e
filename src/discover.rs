//! Discovery: from the configured sources to the packages they hold.
//!
//! A source path is either a package root (any format `package::detect` knows, or a servers
//! config file) or a folder whose sub-folders are package roots (`plugins/`, the user's
//! package folder); a marketplace root holds several packages. Sources come in precedence
//! order: explicit paths (`--package`, `package_paths`, `skill_paths`), the project's
//! `.capmux/packages/` and `.capmux/skills/`, the installed packages (the registry), the
//! user's `packages/` and `skills/` folders, then the bundled `plugins/` and `skills/`. When two
//! roots hold the same package id, the first keeps it and the later one is reported as
//! shadowed, never silently dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::config::{self, Config};
use crate::diagnostic::Diagnostic;
use crate::package::{self, Package, Source};

/// One place to look for packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub path: PathBuf,
    pub source: Source,
    /// An explicit path must exist; the default folders may be absent.
    pub required: bool,
    /// The package id of a skill folder found here (skill folders carry no name).
    pub id: Option<String>,
    /// Of the packages found here (a marketplace has several), only this one.
    pub entry: Option<String>,
}

/// Options of the command line that add to or remove from the config's sources.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--package PATH`, in order.
    pub packages: Vec<PathBuf>,
    /// `--no-bundled`: leave out the bundled `plugins/`.
    pub no_bundled: bool,
    /// `--only`: serve only the `--package` paths (what `capmux check` does).
    pub only_explicit: bool,
}

/// The sources to read, in precedence order; `installed` (the registry's packages) come
/// after the project's folders.
pub fn roots(
    config: &Config,
    overrides: &Overrides,
    cwd: &Path,
    installed: Vec<Root>,
) -> Vec<Root> {
    let mut roots: Vec<Root> = overrides
        .packages
        .iter()
        .map(|p| Root {
            path: absolute(cwd, p),
            source: Source::Explicit,
            required: true,
            id: None,
            entry: None,
        })
        .collect();
    if overrides.only_explicit {
        return roots;
    }
    let explicit = config.package_paths.iter().chain(&config.skill_paths);
    roots.extend(explicit.map(|p| Root {
        path: config.resolve(p),
        source: Source::Explicit,
        required: true,
        id: None,
        entry: None,
    }));
    let optional = |path: PathBuf, source: Source, id: Option<&str>| Root {
        path,
        source,
        required: false,
        id: id.map(str::to_owned),
        entry: None,
    };
    roots.push(optional(
        cwd.join(".capmux").join("packages"),
        Source::Project,
        None,
    ));
    roots.push(optional(
        cwd.join(".capmux").join("skills"),
        Source::Project,
        Some("project-skills"),
    ));
    roots.extend(installed);
    if config.user_packages
        && let Some(data) = config::data_home()
    {
        let home = data.join("capmux");
        roots.push(optional(home.join("packages"), Source::User, None));
        roots.push(optional(
            home.join("skills"),
            Source::User,
            Some("user-skills"),
        ));
    }
    if !overrides.no_bundled {
        let bundled =
            |configured: &Option<PathBuf>, default: &str, id: Option<&str>| match configured {
                Some(dir) => Root {
                    path: config.resolve(dir),
                    source: Source::Bundled,
                    required: true,
                    id: id.map(str::to_owned),
                    entry: None,
                },
                None => optional(cwd.join(default), Source::Bundled, id),
            };
        roots.push(bundled(&config.plugins_dir, "plugins", None));
        roots.push(bundled(&config.skills_dir, "skills", Some("capmux-skills")));
    }
    roots
}

fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

/// Loads every package under `roots`; one bad package never stops the others.
pub fn discover(roots: &[Root]) -> (Vec<Package>, Vec<Diagnostic>) {
    let mut packages: Vec<Package> = Vec::new();
    let mut diagnostics = Vec::new();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut visited: BTreeSet<(PathBuf, Option<String>)> = BTreeSet::new();
    for root in roots {
        for dir in package_dirs(root, &mut diagnostics) {
            // The same folder reached twice (`--package X check X`) is one package, not two.
            if !visited.insert((
                dir.canonicalize().unwrap_or_else(|_| dir.clone()),
                root.entry.clone(),
            )) {
                continue;
            }
            let id = if dir == root.path {
                root.id.as_deref()
            } else {
                None
            };
            for loaded in package::load_all(&dir, root.source, id) {
                // An installed marketplace plugin: only its own package and diagnostics.
                let wanted = |p: &Package| root.entry.as_ref().is_none_or(|e| *e == p.id);
                if root.entry.is_some() && !loaded.package.as_ref().is_some_and(wanted) {
                    continue;
                }
                diagnostics.extend(loaded.diagnostics);
                let Some(package) = loaded.package else {
                    continue;
                };
                if let Some(first) = seen.get(&package.id) {
                    diagnostics.push(
                        Diagnostic::warning(
                            &package.root,
                            format!(
                                "package `{}` is shadowed by the one at {}; this copy is not served",
                                package.id,
                                first.display()
                            ),
                        )
                        .in_package(package.id.clone()),
                    );
                    continue;
                }
                seen.insert(package.id.clone(), package.root.clone());
                packages.push(package);
            }
        }
    }
    (packages, diagnostics)
}

/// The package roots a source path stands for.
fn package_dirs(root: &Root, diagnostics: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let path = &root.path;
    if !path.exists() {
        if root.required {
            diagnostics.push(Diagnostic::error(path, "package path does not exist"));
        }
        return Vec::new();
    }
    if package::is_package_root(path) {
        return vec![path.clone()];
    }
    if !path.is_dir() {
        diagnostics.push(Diagnostic::error(
            path,
            "not a package: expected a package folder or a servers config file",
        ));
        return Vec::new();
    }
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(path) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect(),
        Err(err) => {
            diagnostics.push(Diagnostic::error(
                path,
                format!("cannot read folder: {err}"),
            ));
            return Vec::new();
        }
    };
    dirs.sort();
    let mut out = Vec::new();
    for dir in dirs {
        if package::is_package_root(&dir) {
            out.push(dir);
        } else {
            diagnostics.push(Diagnostic::warning(
                &dir,
                "no package here (a capmux package.json, a Claude Code plugin or marketplace, a Gemini CLI, Codex or AionUi extension, a SKILL.md, or skill folders); the folder is skipped",
            ));
        }
    }
    if out.is_empty() && root.required {
        diagnostics.push(Diagnostic::error(
            path,
            "no package here: neither a package root nor a folder of package roots",
        ));
    }
    out
}
