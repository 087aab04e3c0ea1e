//! `capmux install`, `update` and `remove`: packages from npm, git, GitHub, tarballs,
//! folders and marketplaces into the store, recorded in the registry.
//!
//! Nothing a package ships runs during an install: npm packages are fetched with
//! `npm pack --ignore-scripts` and extracted here; a package whose servers or tools run
//! node gets its dependencies with `npm install --ignore-scripts --omit=dev`; git
//! sources are shallow clones. Extraction and copies accept regular files and folders only:
//! no links, no absolute or `..` paths, no two names that collide on a case-insensitive
//! disk, and caps on file count and size. Everything is staged in a temporary folder inside
//! the store and renamed into place; only then is the registry written. A failed or killed
//! install leaves no package and the registry as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::package::{
    self, Format, HookHandler, Package, Permission, Source, ToolHandler, Transport,
};
use crate::registry::{self, Entry, Home, Kind, Registry};

/// Caps on what a package may unpack to.
pub const MAX_FILES: usize = 10_000;
pub const MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;
pub const MAX_TOTAL_BYTES: u64 = 200 * 1024 * 1024;
const MAX_DEPTH: usize = 32;

/// Where a package comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    Npm(String),
    Tarball(PathBuf),
    Git {
        url: String,
        reference: Option<String>,
        subdir: Option<String>,
    },
    Folder(PathBuf),
    /// `name@marketplace`.
    Marketplace {
        name: String,
        market: String,
    },
}

impl Spec {
    /// Reads a spec: `github:owner/repo[@ref]`, a git URL (`https://…`, `git@…`, `file://…`
    /// with an optional `#ref`), a folder or tarball path, `name@marketplace` (a marketplace
    /// added before), else an npm spec.
    pub fn parse(
        text: &str,
        cwd: &Path,
        markets: &BTreeMap<String, registry::Marketplace>,
    ) -> Spec {
        if let Some(rest) = text.strip_prefix("github:") {
            let (repo, reference) = match rest.split_once('@') {
                Some((repo, r)) => (repo, Some(r.to_owned())),
                None => (
                    rest.split('#').next().unwrap_or(rest),
                    rest.split_once('#').map(|(_, r)| r.to_owned()),
                ),
            };
            return Spec::Git {
                url: format!("https://github.com/{repo}.git"),
                reference,
                subdir: None,
            };
        }
        let is_git = text.starts_with("git@")
            || text.starts_with("git+")
            || text.starts_with("file://")
            || ((text.starts_with("https://") || text.starts_with("http://"))
                && !text.ends_with(".tgz"));
        if is_git {
            // `URL#REF`, `URL#REF:PATH` or `URL#:PATH` (a sub-folder of the repository).
            let (url, fragment) = text.split_once('#').unwrap_or((text, ""));
            let (reference, subdir) = match fragment.split_once(':') {
                Some((r, p)) => (r, Some(p.to_owned()).filter(|p| !p.is_empty())),
                None => (fragment, None),
            };
            return Spec::Git {
                url: url.trim_start_matches("git+").to_owned(),
                reference: Some(reference.to_owned()).filter(|r| !r.is_empty()),
                subdir,
            };
        }
        let path = cwd.join(text);
        let local = text.starts_with('.')
            || text.starts_with('/')
            || text.starts_with('~')
            || path.exists();
        if local {
            let path = match (text.strip_prefix("~/"), std::env::var_os("HOME")) {
                (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
                _ => path,
            };
            return if path.is_file() {
                Spec::Tarball(path)
            } else {
                Spec::Folder(path)
            };
        }
        if let Some((name, market)) = text.rsplit_once('@')
            && !name.is_empty()
            && markets.contains_key(market)
        {
            return Spec::Marketplace {
                name: name.to_owned(),
                market: market.to_owned(),
            };
        }
        Spec::Npm(text.to_owned())
    }
}

/// What the user allows an install.
#[derive(Debug, Clone, Default)]
pub struct Consent {
    /// `--yes`: grant everything the package asks for.
    pub yes: bool,
    /// `--grant PERM`: these, without asking.
    pub grants: BTreeSet<Permission>,
    /// Asks on the terminal; `None` when there is none (then nothing more is granted).
    pub ask: Option<fn(&str) -> bool>,
}

/// What an install did.
#[derive(Debug)]
pub struct Installed {
    pub id: String,
    pub entry: Entry,
    /// The summary shown for consent.
    pub summary: String,
    pub diagnostics: Vec<crate::Diagnostic>,
}

/// Progress on a terminal (quiet when not).
pub struct Progress(indicatif::ProgressBar);

impl Progress {
    pub fn new() -> Progress {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} {pos}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress(bar)
    }

    fn step(&self, message: &str) {
        self.0.set_position(0);
        self.0.set_message(message.to_owned());
    }

    fn tick(&self) {
        self.0.inc(1);
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// Installs (or, for an installed id, replaces) the package of `spec`.
pub fn install(
    home: &Home,
    spec_text: &str,
    cwd: &Path,
    link: bool,
    consent: &Consent,
    progress: &Progress,
) -> Result<Installed, String> {
    install_named(home, spec_text, cwd, link, consent, progress, None)
}

/// [`install`]; `name` is the package's name when its format carries none (a marketplace
/// entry's plugin without a manifest), else the folder fetched is named after its source.
fn install_named(
    home: &Home,
    spec_text: &str,
    cwd: &Path,
    link: bool,
    consent: &Consent,
    progress: &Progress,
    name: Option<&str>,
) -> Result<Installed, String> {
    let registry = home.read()?;
    let spec = Spec::parse(spec_text, cwd, &registry.marketplaces);
    if link && !matches!(spec, Spec::Folder(_)) {
        return Err("--link takes a local folder".into());
    }
    let store = home.store();
    std::fs::create_dir_all(&store)
        .map_err(|e| format!("cannot create {}: {e}", store.display()))?;
    clean_stale_staging(&store);

    // Fetch into a staging folder inside the store (same file system: the final rename is
    // atomic), unless the package is used in place.
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&store)
        .map_err(|e| format!("cannot create a staging folder in {}: {e}", store.display()))?;
    let folder = match (&spec, name) {
        (_, Some(name)) => slug(name),
        (Spec::Folder(path), None) => path
            .file_name()
            .map_or_else(|| "package".into(), |n| slug(&n.to_string_lossy())),
        (Spec::Git { url, subdir, .. }, None) => {
            let last = subdir.as_deref().unwrap_or(url).trim_end_matches('/');
            slug(
                last.rsplit('/')
                    .next()
                    .unwrap_or("package")
                    .trim_end_matches(".git"),
            )
        }
        _ => "package".into(),
    };
    let staged = staging.path().join(if folder.is_empty() {
        "package".into()
    } else {
        folder
    });
    let mut fetched = Fetched::default();
    let (kind, source, root) = match &spec {
        Spec::Folder(path) if link => {
            let path = path
                .canonicalize()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            (Kind::Link, path.display().to_string(), path)
        }
        Spec::Folder(path) => {
            progress.step("copying");
            copy_checked(path, &staged, progress)?;
            let path = path.canonicalize().unwrap_or_else(|_| path.clone());
            (Kind::Folder, path.display().to_string(), staged.clone())
        }
        Spec::Tarball(file) => {
            progress.step("extracting");
            extract_tgz(file, &staged, progress)?;
            let file = file.canonicalize().unwrap_or_else(|_| file.clone());
            (Kind::Tarball, file.display().to_string(), staged.clone())
        }
        Spec::Npm(npm_spec) => {
            progress.step("fetching from npm");
            fetched = npm_pack(npm_spec, staging.path())?;
            progress.step("extracting");
            extract_tgz(&fetched.tarball, &staged, progress)?;
            (Kind::Npm, npm_spec.clone(), staged.clone())
        }
        Spec::Git {
            url,
            reference,
            subdir,
        } => {
            progress.step("cloning");
            fetched.commit = Some(git_fetch(
                url,
                reference.as_deref(),
                subdir.as_deref(),
                staging.path(),
                &staged,
                progress,
            )?);
            (Kind::Git, spec_text.to_owned(), staged.clone())
        }
        Spec::Marketplace { name, market } => {
            return install_from_marketplace(home, &registry, name, market, cwd, consent, progress);
        }
    };
    // What is it?
    let loaded = package::load_all(&root, Source::User, None);
    let mut diagnostics: Vec<crate::Diagnostic> = Vec::new();
    let mut packages: Vec<Package> = Vec::new();
    for l in loaded {
        diagnostics.extend(l.diagnostics);
        packages.extend(l.package);
    }
    if root.join(package::claude_marketplace_file()).is_file() {
        return Err(format!(
            "{spec_text} is a Claude Code marketplace: add it with `capmux marketplace add {spec_text}` and install its plugins as `NAME@MARKETPLACE`"
        ));
    }
    let package = match packages.len() {
        1 => packages.remove(0),
        0 => {
            let reasons: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            return Err(format!(
                "{spec_text} holds no package:\n{}",
                reasons.join("\n")
            ));
        }
        _ => unreachable!("one root gives one package unless it is a marketplace"),
    };
    if kind != Kind::Link && runs_node(&package) && needs_dependencies(&root) {
        progress.step("installing dependencies (scripts off)");
        npm_dependencies(&root)?;
    }
    let digest = (kind != Kind::Link)
        .then(|| tree_digest(&root))
        .transpose()?;

    // Into place: `<store>/<id>-<digest>`; an identical install is already there.
    let path = if kind == Kind::Link {
        root.clone()
    } else {
        let short = digest
            .as_deref()
            .unwrap_or("")
            .trim_start_matches("sha256:");
        let dest = store.join(format!(
            "{}-{}",
            slug(&package.id),
            &short[..12.min(short.len())]
        ));
        if !dest.exists() {
            std::fs::rename(&staged, &dest)
                .map_err(|e| format!("cannot move the package into {}: {e}", dest.display()))?;
        }
        dest
    };
    let summary = summary(&package, &source, &path);
    let fetch = Fetch {
        source,
        kind,
        commit: fetched.commit.clone(),
        integrity: fetched.integrity.clone(),
        digest,
        path: path.clone(),
        entry: None,
    };
    let (entry, old_path) = record(home, &registry, &package, fetch, consent, &summary)?;
    let id = package.id.clone();
    if let Some(old) = old_path
        && old != path
        && old.starts_with(&store)
        && !still_used(home, &old)
    {
        let _ = std::fs::remove_dir_all(&old);
    }
    progress.finish();
    Ok(Installed {
        id,
        entry,
        summary,
        diagnostics,
    })
}

/// Where an installed package is and what was fetched.
struct Fetch {
    source: String,
    kind: Kind,
    commit: Option<String>,
    integrity: Option<String>,
    digest: Option<String>,
    path: PathBuf,
    entry: Option<String>,
}

/// Consent, then the registry: a new package's grants are what the user said (asked on a
/// terminal after `summary`); an update keeps its grants and settings and is held when it
/// asks for more. Returns the entry and the path of the version it replaced.
fn record(
    home: &Home,
    registry: &Registry,
    package: &Package,
    fetch: Fetch,
    consent: &Consent,
    summary: &str,
) -> Result<(Entry, Option<PathBuf>), String> {
    let id = package.id.clone();
    let requested: BTreeSet<String> = package.permissions.iter().map(|p| p.to_string()).collect();
    let previous = registry.packages.get(&id).cloned();
    let yes = consent.yes
        || requested
            .iter()
            .all(|p| consent.grants.iter().any(|g| g.as_str() == p))
        || (previous.is_none()
            && !requested.is_empty()
            && consent.ask.is_some_and(|ask| {
                ask(&format!(
                    "{summary}\nGrant these permissions and enable `{id}`?"
                ))
            }));
    let mut entry = Entry {
        source: fetch.source,
        kind: fetch.kind,
        version: package.version.clone(),
        commit: fetch.commit,
        integrity: fetch.integrity,
        digest: fetch.digest,
        path: fetch.path,
        entry: fetch.entry,
        enabled: true,
        held: None,
        requested,
        grants: BTreeSet::new(),
        settings: BTreeMap::new(),
        installed_at: registry::now(),
    };
    decide(&mut entry, previous.as_ref(), consent, yes);
    let old = home.update(|reg| {
        let old = reg.packages.get(&id).cloned();
        if let Some(old) = &old {
            entry.settings = old.settings.clone();
        }
        reg.packages.insert(id.clone(), entry.clone());
        Ok(old.map(|o| o.path))
    })?;
    Ok((entry, old))
}

/// Sets the grants and enabled state of a new or updated entry.
fn decide(entry: &mut Entry, previous: Option<&Entry>, consent: &Consent, yes: bool) {
    let explicit: BTreeSet<String> = consent.grants.iter().map(|p| p.to_string()).collect();
    match previous {
        Some(old) => {
            entry.grants = old.grants.iter().chain(&explicit).cloned().collect();
            if consent.yes {
                entry.grants.extend(entry.requested.iter().cloned());
            }
            entry.enabled = old.enabled;
            let more: Vec<&String> = entry
                .requested
                .difference(&entry.grants)
                .filter(|p| !old.requested.contains(*p))
                .collect();
            entry.held = if more.is_empty() {
                None
            } else {
                Some(format!(
                    "the new version asks for more permissions: {}; grant them (`capmux grant`) to serve it again",
                    more.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            };
        }
        None if yes => {
            entry.grants = entry.requested.iter().chain(&explicit).cloned().collect();
            entry.enabled = true;
        }
        None => {
            entry.grants = explicit;
            entry.enabled = entry.requested.is_empty() || entry.requested.is_subset(&entry.grants);
            if !entry.enabled {
                entry.held = Some("installed without consent; enable it with `capmux enable` after granting what it asks for (`capmux grant`)".into());
            }
        }
    }
}

/// Whether another registry entry still uses `path` (two ids of one marketplace copy).
fn still_used(home: &Home, path: &Path) -> bool {
    home.read()
        .map(|r| {
            r.packages.values().any(|e| e.path == path)
                || r.marketplaces.values().any(|m| m.path == path)
        })
        .unwrap_or(true)
}

/// Installs a plugin of an added marketplace: a plugin inside the marketplace is served
/// from the marketplace's copy; one from elsewhere is installed from its source.
fn install_from_marketplace(
    home: &Home,
    registry: &Registry,
    name: &str,
    market: &str,
    cwd: &Path,
    consent: &Consent,
    progress: &Progress,
) -> Result<Installed, String> {
    let Some(m) = registry.marketplaces.get(market) else {
        return Err(format!(
            "no marketplace `{market}`; add it with `capmux marketplace add`"
        ));
    };
    let file = m.path.join(package::claude_marketplace_file());
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let entries = json
        .get("plugins")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(item) = entries
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
    else {
        let names: Vec<&str> = entries
            .iter()
            .filter_map(|e| e.get("name")?.as_str())
            .collect();
        return Err(format!(
            "marketplace `{market}` has no plugin `{name}`; it has: {}",
            names.join(", ")
        ));
    };
    let source = item.get("source").cloned().unwrap_or(Value::Null);
    let remote = match &source {
        Value::String(_) => None,
        Value::Object(o) => {
            let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
            let reference = text("sha").or(text("ref"));
            Some(match text("source").as_deref() {
                Some("github") => {
                    let repo = text("repo").ok_or("github source without `repo`")?;
                    match reference {
                        Some(r) => format!("github:{repo}@{r}"),
                        None => format!("github:{repo}"),
                    }
                }
                Some("url") | Some("git-subdir") => {
                    let mut url = text("url").ok_or("source without `url`")?;
                    if !url.contains("://") && !url.starts_with("git@") {
                        url = format!("https://github.com/{url}.git");
                    }
                    match (reference, text("path")) {
                        (r, Some(path)) => format!("{url}#{}:{path}", r.unwrap_or_default()),
                        (Some(r), None) => format!("{url}#{r}"),
                        (None, None) => url,
                    }
                }
                Some("npm") => {
                    let pkg = text("package").ok_or("npm source without `package`")?;
                    match text("version") {
                        Some(v) => format!("{pkg}@{v}"),
                        None => pkg,
                    }
                }
                other => {
                    return Err(format!(
                        "plugin `{name}`: source {other:?} is not supported"
                    ));
                }
            })
        }
        _ => return Err(format!("plugin `{name}` has no `source`")),
    };
    if let Some(spec) = remote {
        return install_named(home, &spec, cwd, false, consent, progress, Some(name));
    }
    // A plugin in the marketplace's own copy: served from there, picked by name.
    let loaded = package::load_all(&m.path, Source::User, None);
    let package = loaded
        .into_iter()
        .filter_map(|l| l.package)
        .find(|p| p.id == name)
        .ok_or_else(|| {
            format!(
                "plugin `{name}` of `{market}` does not load; run `capmux check {}`",
                m.path.display()
            )
        })?;
    let summary = summary(&package, &format!("{name}@{market}"), &package.root);
    let fetch = Fetch {
        source: format!("{name}@{market}"),
        kind: Kind::Marketplace,
        commit: m.commit.clone(),
        integrity: None,
        digest: Some(tree_digest(&m.path)?),
        path: m.path.clone(),
        entry: Some(name.to_owned()),
    };
    let (entry, _) = record(home, registry, &package, fetch, consent, &summary)?;
    progress.finish();
    Ok(Installed {
        id: name.to_owned(),
        entry,
        summary,
        diagnostics: Vec::new(),
    })
}

/// `capmux marketplace add SPEC`: a copy of the marketplace in the store, by its name.
pub fn add_marketplace(
    home: &Home,
    spec_text: &str,
    cwd: &Path,
    progress: &Progress,
) -> Result<(String, usize), String> {
    let registry = home.read()?;
    let store = home.store();
    std::fs::create_dir_all(&store).map_err(|e| e.to_string())?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&store)
        .map_err(|e| e.to_string())?;
    let staged = staging.path().join("market");
    let mut commit = None;
    let source = match Spec::parse(spec_text, cwd, &registry.marketplaces) {
        Spec::Folder(path) => {
            copy_checked(&path, &staged, progress)?;
            path.canonicalize().unwrap_or(path).display().to_string()
        }
        Spec::Git {
            url,
            reference,
            subdir,
        } => {
            commit = Some(git_fetch(
                &url,
                reference.as_deref(),
                subdir.as_deref(),
                staging.path(),
                &staged,
                progress,
            )?);
            spec_text.to_owned()
        }
        _ => {
            return Err(format!(
                "{spec_text}: a marketplace is a folder or a git repository"
            ));
        }
    };
    let file = staged.join(package::claude_marketplace_file());
    let text = std::fs::read_to_string(&file)
        .map_err(|_| format!("{spec_text} has no .claude-plugin/marketplace.json"))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let name = json
        .get("name")
        .and_then(Value::as_str)
        .ok_or("marketplace.json has no `name`")?
        .to_owned();
    let plugins = json
        .get("plugins")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let digest = tree_digest(&staged)?;
    let dest = store.join(format!(
        "market-{}-{}",
        slug(&name),
        &digest.trim_start_matches("sha256:")[..12]
    ));
    if !dest.exists() {
        std::fs::rename(&staged, &dest).map_err(|e| e.to_string())?;
    }
    home.update(|reg| {
        reg.marketplaces.insert(
            name.clone(),
            registry::Marketplace {
                source,
                path: dest.clone(),
                commit,
            },
        );
        Ok(())
    })?;
    progress.finish();
    Ok((name, plugins))
}

/// `capmux remove ID`: out of the registry, then its files out of the store.
pub fn remove(home: &Home, id: &str) -> Result<Entry, String> {
    let entry = home.update(|reg| {
        reg.packages
            .remove(id)
            .ok_or_else(|| format!("no installed package `{id}`"))
    })?;
    if entry.kind != Kind::Link
        && entry.kind != Kind::Marketplace
        && entry.path.starts_with(home.store())
        && !still_used(home, &entry.path)
    {
        let _ = std::fs::remove_dir_all(&entry.path);
    }
    Ok(entry)
}

/// `capmux update ID`: the same source fetched again and swapped in when it installs.
pub fn update(
    home: &Home,
    id: &str,
    cwd: &Path,
    consent: &Consent,
    progress: &Progress,
) -> Result<Installed, String> {
    let registry = home.read()?;
    let entry = registry
        .packages
        .get(id)
        .ok_or_else(|| format!("no installed package `{id}`"))?;
    let link = entry.kind == Kind::Link;
    let installed = install(home, &entry.source.clone(), cwd, link, consent, progress)?;
    if installed.id != id {
        return Err(format!(
            "the source now holds `{}`, not `{id}`; it was installed beside it",
            installed.id
        ));
    }
    Ok(installed)
}

/// Each installed package with what `verify` found: nothing wrong, or why it is held.
pub type Verified = Vec<(String, Result<(), String>)>;

/// `capmux verify`: each installed tree against its digest; drift holds the package.
pub fn verify(home: &Home) -> Result<Verified, String> {
    let registry = home.read()?;
    let mut out = Vec::new();
    let mut drifted = Vec::new();
    for (id, entry) in &registry.packages {
        let Some(expected) = &entry.digest else {
            out.push((id.clone(), Ok(())));
            continue;
        };
        let result = match tree_digest(&entry.path) {
            Ok(actual) if actual == *expected => Ok(()),
            Ok(actual) => Err(format!(
                "files changed since install (digest {actual}, installed {expected})"
            )),
            Err(err) => Err(err),
        };
        if let Err(reason) = &result {
            drifted.push((id.clone(), reason.clone()));
        }
        out.push((id.clone(), result));
    }
    if !drifted.is_empty() {
        home.update(|reg| {
            for (id, reason) in &drifted {
                if let Some(e) = reg.packages.get_mut(id) {
                    e.held = Some(format!(
                        "held by `capmux verify`: {reason}; reinstall or update it"
                    ));
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// What the user is asked to approve: the package, its source, its permissions and the
/// exact commands it will run.
pub fn summary(package: &Package, source: &str, path: &Path) -> String {
    let mut out = format!(
        "{} {} ({})\n  source: {source}\n  files: {}\n  permissions: {}\n",
        package.id,
        package.version.as_deref().unwrap_or("-"),
        package.format,
        path.display(),
        if package.permissions.is_empty() {
            "none".to_owned()
        } else {
            package
                .permissions
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let mut runs = Vec::new();
    for tool in &package.tools {
        let ToolHandler::Command { argv, .. } = &tool.handler;
        runs.push(format!("tool {}: {}", tool.name, argv.join(" ")));
    }
    for hook in &package.hooks {
        runs.push(match &hook.handler {
            HookHandler::Command { argv } => format!(
                "hook {}: {}",
                crate::hooks::capmux_name(hook.event),
                argv.join(" ").replace("$${", "${")
            ),
            HookHandler::Http { url } => {
                format!("hook {}: POST {url}", crate::hooks::capmux_name(hook.event))
            }
        });
    }
    for server in &package.mcp_servers {
        runs.push(match &server.transport {
            Transport::Stdio { command, args, .. } => {
                format!("server {}: {command} {}", server.name, args.join(" "))
            }
            Transport::Http { url, .. } | Transport::Sse { url, .. } => {
                format!("server {}: {url}", server.name)
            }
        });
    }
    if package.prompts.iter().any(|p| p.inline) {
        runs.push("prompts with inline shell commands".into());
    }
    if !runs.is_empty() {
        out.push_str("  runs:\n");
        for r in runs {
            out.push_str(&format!("    {r}\n"));
        }
    }
    out
}

#[derive(Default)]
struct Fetched {
    tarball: PathBuf,
    integrity: Option<String>,
    commit: Option<String>,
}

/// `npm pack SPEC` into `dir`: the tarball and its integrity. No script runs.
fn npm_pack(spec: &str, dir: &Path) -> Result<Fetched, String> {
    let npm = which::which("npm")
        .map_err(|_| "npm is not on PATH; it fetches npm packages".to_owned())?;
    let out = Command::new(npm)
        .args([
            "pack",
            spec,
            "--json",
            "--ignore-scripts",
            "--pack-destination",
        ])
        .arg(dir)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "npm pack {spec} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let json: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("npm pack printed no JSON: {e}"))?;
    let first = json.get(0).ok_or("npm pack printed nothing")?;
    let filename = first
        .get("filename")
        .and_then(Value::as_str)
        .ok_or("npm pack: no filename")?;
    Ok(Fetched {
        tarball: dir.join(filename),
        integrity: first
            .get("integrity")
            .and_then(Value::as_str)
            .map(str::to_owned),
        commit: None,
    })
}

/// Whether the package's servers or tools run node (then they need its `node_modules`).
fn runs_node(package: &Package) -> bool {
    let node = |program: &str| {
        let name = program.rsplit('/').next().unwrap_or(program);
        name == "node" || name == "npx" || name.ends_with(".js") || name.ends_with(".mjs")
    };
    package.format == Format::NpmServer
        || package.mcp_servers.iter().any(|s| match &s.transport {
            Transport::Stdio { command, args, .. } => {
                node(command) || args.first().is_some_and(|a| node(a))
            }
            _ => false,
        })
        || package.tools.iter().any(|t| {
            let ToolHandler::Command { argv, .. } = &t.handler;
            argv.first().is_some_and(|a| node(a))
        })
}

fn needs_dependencies(root: &Path) -> bool {
    std::fs::read_to_string(root.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|j| {
            j.get("dependencies")
                .and_then(Value::as_object)
                .map(|d| !d.is_empty())
        })
        .unwrap_or(false)
}

/// The production dependencies of an npm server, with every script off.
fn npm_dependencies(root: &Path) -> Result<(), String> {
    let npm = which::which("npm").map_err(|_| "npm is not on PATH".to_owned())?;
    let out = Command::new(npm)
        .args([
            "install",
            "--ignore-scripts",
            "--omit=dev",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "installing the dependencies failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// A shallow clone of `url` at `reference` (a branch, tag or commit) into `work`; the tree
/// (or its `subdir`) is copied to `dest` without `.git`. Returns the commit.
fn git_fetch(
    url: &str,
    reference: Option<&str>,
    subdir: Option<&str>,
    work: &Path,
    dest: &Path,
    progress: &Progress,
) -> Result<String, String> {
    let git = which::which("git").map_err(|_| "git is not on PATH".to_owned())?;
    let clone = work.join("clone");
    let run = |args: &[&str], dir: Option<&Path>| -> Result<String, String> {
        let mut cmd = Command::new(&git);
        cmd.args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1");
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        let out = cmd.output().map_err(|e| format!("cannot run git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let clone_str = clone.display().to_string();
    let is_sha =
        reference.is_some_and(|r| r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit()));
    match reference {
        Some(r) if is_sha => {
            run(
                &["clone", "--no-checkout", "--quiet", url, &clone_str],
                None,
            )?;
            run(&["checkout", "--quiet", r], Some(&clone))?;
        }
        Some(r) => {
            run(
                &[
                    "clone", "--depth", "1", "--quiet", "--branch", r, url, &clone_str,
                ],
                None,
            )?;
        }
        None => {
            run(&["clone", "--depth", "1", "--quiet", url, &clone_str], None)?;
        }
    }
    let commit = run(&["rev-parse", "HEAD"], Some(&clone))?;
    let from = match subdir {
        Some(sub) => {
            let path = clone.join(sub);
            let inside = path
                .canonicalize()
                .ok()
                .filter(|p| p.starts_with(clone.canonicalize().unwrap_or_default()));
            inside.ok_or_else(|| format!("`{sub}` is not a folder of the repository"))?
        }
        None => clone.clone(),
    };
    copy_checked(&from, dest, progress)?;
    Ok(commit)
}

/// Counts what goes in, against the caps, and refuses case-insensitive collisions.
#[derive(Default)]
struct Budget {
    files: usize,
    bytes: u64,
    seen: BTreeSet<String>,
}

impl Budget {
    fn admit(&mut self, rel: &Path, size: u64, is_file: bool) -> Result<(), String> {
        check_relative(rel)?;
        let folded = rel.to_string_lossy().to_lowercase();
        if !self.seen.insert(folded) {
            return Err(format!(
                "`{}` collides with another entry on a case-insensitive disk",
                rel.display()
            ));
        }
        if is_file {
            self.files += 1;
            self.bytes += size;
            if self.files > MAX_FILES {
                return Err(format!("more than {MAX_FILES} files"));
            }
            if size > MAX_FILE_BYTES {
                return Err(format!(
                    "`{}` is {size} bytes; the cap is {MAX_FILE_BYTES}",
                    rel.display()
                ));
            }
            if self.bytes > MAX_TOTAL_BYTES {
                return Err(format!("more than {MAX_TOTAL_BYTES} bytes in all"));
            }
        }
        Ok(())
    }
}

/// A path inside a package: plain names only, no `..`, not absolute, not too deep.
fn check_relative(rel: &Path) -> Result<(), String> {
    let mut depth = 0;
    for c in rel.components() {
        match c {
            Component::Normal(name) => {
                let name = name
                    .to_str()
                    .ok_or_else(|| format!("`{}` is not UTF-8", rel.display()))?;
                if name.chars().any(|ch| ch.is_control() || ch == '\\') {
                    return Err(format!(
                        "`{}` has a control character or a backslash",
                        rel.display()
                    ));
                }
                depth += 1;
            }
            _ => {
                return Err(format!(
                    "`{}` is absolute or climbs out with `..`",
                    rel.display()
                ));
            }
        }
    }
    if depth > MAX_DEPTH {
        return Err(format!(
            "`{}` is nested deeper than {MAX_DEPTH}",
            rel.display()
        ));
    }
    Ok(())
}

/// Writes a new file below `dest` (never through an existing file or link).
fn write_new(
    dest: &Path,
    rel: &Path,
    mut content: impl Read,
    executable: bool,
) -> Result<(), String> {
    let path = dest.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .mode(if executable { 0o755 } else { 0o644 })
        .open(&path)
        .map_err(|e| format!("cannot write `{}`: {e}", rel.display()))?;
    let limited = std::io::copy(&mut (&mut content).take(MAX_FILE_BYTES + 1), &mut file)
        .map_err(|e| format!("cannot write `{}`: {e}", rel.display()))?;
    if limited > MAX_FILE_BYTES {
        return Err(format!(
            "`{}` is over {MAX_FILE_BYTES} bytes",
            rel.display()
        ));
    }
    Ok(())
}

/// Extracts an npm-style `.tgz` into `dest`, stripping its one top folder (`package/`).
/// Regular files and folders only; anything else refuses the whole archive.
pub fn extract_tgz(file: &Path, dest: &Path, progress: &Progress) -> Result<(), String> {
    let input = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(input));
    std::fs::create_dir_all(dest).map_err(|e| e.to_string())?;
    let mut budget = Budget::default();
    let entries = archive
        .entries()
        .map_err(|e| format!("{}: not a tar.gz: {e}", file.display()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{}: {e}", file.display()))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw).map_err(|_| "an entry name is not UTF-8".to_owned())?;
        if name.starts_with('/') {
            return Err(format!(
                "refused: the archive has an absolute path `{name}`"
            ));
        }
        let path = PathBuf::from(&name);
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!(
                "refused: the archive has a path climbing out `{name}`"
            ));
        }
        let kind = entry.header().entry_type();
        // The one top folder of npm and GitHub tarballs goes.
        let rel: PathBuf = path.components().skip(1).collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        match kind {
            tar::EntryType::Directory => {
                budget.admit(&rel, 0, false)?;
                std::fs::create_dir_all(dest.join(&rel)).map_err(|e| e.to_string())?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.header().size().unwrap_or(0);
                budget.admit(&rel, size, true)?;
                let executable = entry.header().mode().is_ok_and(|m| m & 0o111 != 0);
                write_new(dest, &rel, &mut entry, executable)?;
                progress.tick();
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            other => {
                return Err(format!(
                    "refused: `{name}` is a {} ; packages hold regular files and folders only",
                    match other {
                        tar::EntryType::Symlink => "symbolic link",
                        tar::EntryType::Link => "hard link",
                        _ => "special file",
                    }
                ));
            }
        }
    }
    Ok(())
}

/// Copies a folder (without `.git` and `node_modules`) into `dest`, under the same rules as
/// an archive: a link anywhere refuses the whole copy.
pub fn copy_checked(from: &Path, dest: &Path, progress: &Progress) -> Result<(), String> {
    if !from.is_dir() {
        return Err(format!("{} is not a folder", from.display()));
    }
    std::fs::create_dir_all(dest).map_err(|e| e.to_string())?;
    let mut budget = Budget::default();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = from.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            if name == ".git" || name == "node_modules" {
                continue;
            }
            let child = rel.join(&name);
            let meta = std::fs::symlink_metadata(entry.path()).map_err(|e| e.to_string())?;
            if meta.is_dir() {
                budget.admit(&child, 0, false)?;
                std::fs::create_dir_all(dest.join(&child)).map_err(|e| e.to_string())?;
                stack.push(child);
            } else if meta.is_file() {
                budget.admit(&child, meta.len(), true)?;
                let file = std::fs::File::open(entry.path()).map_err(|e| e.to_string())?;
                write_new(dest, &child, file, meta.permissions().mode() & 0o111 != 0)?;
                progress.tick();
            } else {
                return Err(format!(
                    "refused: `{}` is a link or a special file; packages hold regular files and folders only",
                    child.display()
                ));
            }
        }
    }
    Ok(())
}

/// `sha256:` over the tree: every file's path, executable bit and content, in path order
/// (`node_modules`, installed from the registry, is left out).
pub fn tree_digest(root: &Path) -> Result<String, String> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let entry = entry.map_err(|e| e.to_string())?;
            let name = entry.file_name();
            if name == "node_modules" || name == ".git" {
                continue;
            }
            let child = rel.join(&name);
            let meta = std::fs::symlink_metadata(entry.path()).map_err(|e| e.to_string())?;
            if meta.is_dir() {
                stack.push(child);
            } else {
                files.push((child, meta));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Sha256::new();
    for (rel, meta) in files {
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0, u8::from(meta.permissions().mode() & 0o111 != 0)]);
        if meta.is_file() {
            let mut file = std::fs::File::open(root.join(&rel)).map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = file.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        } else {
            hasher.update(b"<not a file>");
        }
        hasher.update([0]);
    }
    Ok(format!("sha256:{}", hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A store folder name from a package id.
fn slug(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_owned()
}

/// Removes staging folders an interrupted install left (older than ten minutes).
fn clean_stale_staging(store: &Path) {
    let Ok(entries) = std::fs::read_dir(store) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let stale = entry.file_name().to_string_lossy().starts_with(".staging-")
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 600);
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_told_apart() {
        let cwd = Path::new("/nonexistent");
        let none = BTreeMap::new();
        assert_eq!(
            Spec::parse("@scope/pkg@^1.2", cwd, &none),
            Spec::Npm("@scope/pkg@^1.2".into())
        );
        assert_eq!(
            Spec::parse("github:o/r@v1", cwd, &none),
            Spec::Git {
                url: "https://github.com/o/r.git".into(),
                reference: Some("v1".into()),
                subdir: None
            }
        );
        assert_eq!(
            Spec::parse("file:///r#:plugins/x", cwd, &none),
            Spec::Git {
                url: "file:///r".into(),
                reference: None,
                subdir: Some("plugins/x".into())
            }
        );
        assert_eq!(
            Spec::parse("file:///tmp/x.git#v2", cwd, &none),
            Spec::Git {
                url: "file:///tmp/x.git".into(),
                reference: Some("v2".into()),
                subdir: None
            }
        );
        assert_eq!(
            Spec::parse("./here", cwd, &none),
            Spec::Folder(cwd.join("./here"))
        );
        let mut markets = BTreeMap::new();
        markets.insert(
            "team".to_owned(),
            registry::Marketplace {
                source: String::new(),
                path: PathBuf::new(),
                commit: None,
            },
        );
        assert_eq!(
            Spec::parse("alpha@team", cwd, &markets),
            Spec::Marketplace {
                name: "alpha".into(),
                market: "team".into()
            }
        );
        assert_eq!(
            Spec::parse("alpha@1.0.0", cwd, &markets),
            Spec::Npm("alpha@1.0.0".into())
        );
    }

    #[test]
    fn paths_that_climb_out_or_collide_are_refused() {
        assert!(check_relative(Path::new("a/../b")).is_err());
        assert!(check_relative(Path::new("/etc/x")).is_err());
        assert!(check_relative(Path::new("a/b.txt")).is_ok());
        let mut budget = Budget::default();
        budget
            .admit(Path::new("Readme.md"), 1, true)
            .expect("test step");
        assert!(
            budget
                .admit(Path::new("README.md"), 1, true)
                .unwrap_err()
                .contains("case-insensitive")
        );
    }
}
