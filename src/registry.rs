//! The registry of installed packages: `$XDG_DATA_HOME/capmux/registry.json`, beside the
//! store (`…/capmux/store/`) that holds their files.
//!
//! For each package: where it came from (the spec as given and its kind), the resolved
//! version, the git commit or npm integrity, a SHA-256 over the installed tree, whether it
//! is enabled (or held, and why), the permissions it asked for and those granted, and its
//! setting values. It is the lockfile too: `update` resolves the same source again.
//!
//! Every change takes an exclusive lock (`registry.lock`, `flock`), reads the file, changes
//! it, and writes a temporary file that is synced and renamed over it; the previous version
//! is kept as `registry.json.bak`. So concurrent commands never lose an entry, a killed one
//! leaves the old or the new file, and a corrupt file is an error naming the backup, never
//! a silent reset. The file is only readable by the user (it holds secret settings).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version of the file's layout this build writes and reads.
pub const VERSION: u64 = 1;

/// The registry file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub version: u64,
    #[serde(default)]
    pub packages: BTreeMap<String, Entry>,
    /// Claude Code marketplaces added with `capmux marketplace add`, by name.
    #[serde(default)]
    pub marketplaces: BTreeMap<String, Marketplace>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            version: VERSION,
            packages: BTreeMap::new(),
            marketplaces: BTreeMap::new(),
        }
    }
}

/// How a package was fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An npm spec, fetched with `npm pack`.
    Npm,
    /// A tarball file (`npm pack`'s output).
    Tarball,
    /// A git repository (also `github:owner/repo`), cloned at a ref.
    Git,
    /// A local folder, copied.
    Folder,
    /// A local folder used in place (`--link`).
    Link,
    /// A plugin of a marketplace added with `capmux marketplace add`.
    Marketplace,
}

/// One installed package.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// The spec it was installed from, as given (a folder as an absolute path).
    pub source: String,
    pub kind: Kind,
    pub version: Option<String>,
    /// The commit a git source was at.
    pub commit: Option<String>,
    /// The npm registry's integrity of the tarball (`sha512-…`).
    pub integrity: Option<String>,
    /// `sha256:` over the installed tree (not for a link).
    pub digest: Option<String>,
    /// Where its files are.
    pub path: PathBuf,
    /// For a marketplace plugin: its name in the marketplace at `path`.
    #[serde(default)]
    pub entry: Option<String>,
    pub enabled: bool,
    /// Why it is held (disabled by capmux, not by the user): drift, more permissions asked.
    #[serde(default)]
    pub held: Option<String>,
    /// The permissions it declared when it was last approved.
    #[serde(default)]
    pub requested: BTreeSet<String>,
    #[serde(default)]
    pub grants: BTreeSet<String>,
    #[serde(default)]
    pub settings: BTreeMap<String, Value>,
    /// Seconds since the epoch.
    pub installed_at: u64,
}

/// A marketplace: its files in the store, and where they came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Marketplace {
    pub source: String,
    pub path: PathBuf,
    pub commit: Option<String>,
}

/// capmux's folder in the user's data folder.
#[derive(Debug, Clone)]
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    /// `$XDG_DATA_HOME/capmux` (else `~/.local/share/capmux`).
    pub fn find() -> Option<Home> {
        crate::config::data_home().map(|d| Home {
            dir: d.join("capmux"),
        })
    }

    pub fn registry(&self) -> PathBuf {
        self.dir.join("registry.json")
    }

    pub fn backup(&self) -> PathBuf {
        self.dir.join("registry.json.bak")
    }

    pub fn store(&self) -> PathBuf {
        self.dir.join("store")
    }

    /// The registry as it is; an empty one when there is none yet.
    pub fn read(&self) -> Result<Registry, String> {
        let path = self.registry();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Registry::default());
            }
            Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
        };
        let registry: Registry = serde_json::from_str(&text).map_err(|err| {
            format!(
                "the registry {} is corrupt ({err}); capmux leaves it as it is and changes nothing. The previous version is {}: check it and copy it over the registry, or move the registry away to start empty",
                path.display(),
                self.backup().display()
            )
        })?;
        if registry.version != VERSION {
            return Err(format!(
                "the registry {} has version {}; this capmux reads version {VERSION}",
                path.display(),
                registry.version
            ));
        }
        Ok(registry)
    }

    /// Changes the registry under the exclusive lock; `change` sees the current file and
    /// its result is written (by rename) unless it fails.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Registry) -> Result<T, String>,
    ) -> Result<T, String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|err| format!("cannot create {}: {err}", self.dir.display()))?;
        let lock_path = self.dir.join("registry.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|err| format!("cannot open {}: {err}", lock_path.display()))?;
        let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, err)| format!("cannot lock {}: {err}", lock_path.display()))?;
        let mut registry = self.read()?;
        let result = change(&mut registry)?;
        self.write(&registry)?;
        Ok(result)
    }

    /// Writes `registry`: a synced temporary file renamed over the old one, which is kept
    /// as the backup. Called under the lock.
    fn write(&self, registry: &Registry) -> Result<(), String> {
        let path = self.registry();
        let text = serde_json::to_string_pretty(registry).map_err(|e| e.to_string())? + "\n";
        let tmp = self
            .dir
            .join(format!(".registry.json.{}.tmp", std::process::id()));
        let result = (|| -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            if path.exists() {
                std::fs::copy(&path, self.backup())?;
            }
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        })();
        result.map_err(|err| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {err}", path.display())
        })
    }
}

/// The package roots the registry holds, and the config with their grants, settings and
/// enabled state merged in (the config's own table for a package wins for settings and
/// enabled; grants are the union). A corrupt registry is one error diagnostic, and no
/// installed package is served.
pub fn apply(config: &mut crate::Config) -> (Vec<crate::discover::Root>, Vec<crate::Diagnostic>) {
    let Some(home) = Home::find() else {
        return (Vec::new(), Vec::new());
    };
    let registry = match home.read() {
        Ok(r) => r,
        Err(err) => {
            return (
                Vec::new(),
                vec![crate::Diagnostic::error(home.registry(), err)],
            );
        }
    };
    let mut roots = Vec::new();
    for (id, entry) in registry.packages {
        let table = config.packages.entry(id.clone()).or_default();
        table.grants.extend(entry.grants.iter().cloned());
        table.grants.sort();
        table.grants.dedup();
        for (k, v) in entry.settings {
            table.settings.entry(k).or_insert(v);
        }
        if table.enabled.is_none() {
            table.enabled = Some(entry.enabled && entry.held.is_none());
        }
        roots.push(crate::discover::Root {
            path: entry.path,
            source: crate::package::Source::User,
            required: true,
            id: Some(id.clone()),
            entry: entry.entry.or(Some(id)),
        });
    }
    (roots, Vec::new())
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
