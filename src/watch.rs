//! Hot reload for `capmux serve`: the registry, the config file, the package sources and
//! every package folder are watched (inotify, through `notify`); a burst of changes makes one
//! reload after it has been quiet for a moment. The reload loads everything again and hands
//! the new pool to [`Server::reload`], which keeps the children whose launch is unchanged
//! and tells the client which lists changed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::{Config, Diagnostic, Options, Server};

/// How long changes must stop before a reload.
const QUIET: Duration = Duration::from_millis(250);

/// The most folders watched in one package (a package is small; `node_modules` and `.git`
/// are never watched).
const MAX_DIRS: usize = 2000;

/// Reloads `server` whenever what it serves changes on disk, until the process ends.
pub async fn run(server: Server, options: Options, mut known: Vec<Diagnostic>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    // A `--config FILE` is watched through its folder (editors replace files by rename);
    // of that folder only the file itself counts (`--config /dev/null` watches /dev).
    let config = options.config.as_ref().map(|f| options.cwd.join(f));
    let relevant = move |path: &Path| match &config {
        Some(file) => path == file || path.parent() != file.parent(),
        None => true,
    };
    let mut watcher =
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| {
                !matches!(e.kind, notify::EventKind::Access(_))
                    && e.paths.iter().any(|p| relevant(p))
            }) {
                let _ = tx.send(());
            }
        }) {
            Ok(w) => w,
            Err(err) => {
                tracing::warn!("hot reload is off: cannot watch files: {err}");
                return;
            }
        };
    let mut watched = BTreeSet::new();
    watch_all(&mut watcher, &mut watched, &paths(&server, &options));
    while rx.recv().await.is_some() {
        // One reload for a burst (an install writes many files, then the registry).
        loop {
            match tokio::time::timeout(QUIET, rx.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        let config = match Config::find(options.config.as_deref(), &options.cwd) {
            Ok(config) => config,
            Err(err) => {
                tracing::error!("not reloaded: {err}");
                continue;
            }
        };
        let loaded = crate::load_with(config, &options);
        for d in loaded.diagnostics.iter().filter(|d| !known.contains(d)) {
            if d.severity != crate::Severity::Info {
                tracing::warn!(package = d.package.as_deref().unwrap_or("-"), path = %d.path.display(), "{}", d.message);
            }
        }
        known = loaded.diagnostics;
        let packages = loaded.pool.packages.len();
        server.reload(loaded.pool).await;
        tracing::info!(packages, "reloaded");
        watch_all(&mut watcher, &mut watched, &paths(&server, &options));
    }
}

/// What to watch: the registry's folder, the config's folder, the source folders and each
/// package root (recursively, as folders), as (path, recursive).
fn paths(server: &Server, options: &Options) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    if let Some(home) = crate::registry::Home::find() {
        // Made now, so the first install's registry is seen.
        let _ = std::fs::create_dir_all(&home.dir);
        out.push((home.dir.clone(), false));
    }
    match &options.config {
        Some(file) => out.extend(file.parent().map(|d| (options.cwd.join(d), false))),
        None => {
            out.push((options.cwd.join(".capmux"), false));
            if let Some(dir) = crate::config::config_home() {
                out.push((dir.join("capmux"), false));
            }
        }
    }
    for p in &options.overrides.packages {
        let p = options.cwd.join(p);
        out.push((
            if p.is_file() {
                p.parent().map(Path::to_path_buf).unwrap_or(p)
            } else {
                p
            },
            false,
        ));
    }
    out.push((options.cwd.join(".capmux/packages"), false));
    if let Some(data) = crate::config::data_home() {
        out.push((data.join("capmux/packages"), false));
    }
    for active in server.pool().packages.iter() {
        let root = &active.package.root;
        if root.is_dir() {
            out.push((root.clone(), true));
        }
    }
    out
}

/// Watches every folder of `paths` not watched yet (a recursive one folder by folder,
/// leaving out `node_modules` and `.git`).
fn watch_all(
    watcher: &mut impl Watcher,
    watched: &mut BTreeSet<PathBuf>,
    paths: &[(PathBuf, bool)],
) {
    for (path, recursive) in paths {
        let mut stack = vec![path.clone()];
        let mut count = 0;
        while let Some(dir) = stack.pop() {
            if !dir.is_dir() || count >= MAX_DIRS {
                continue;
            }
            count += 1;
            if watched.insert(dir.clone())
                && let Err(err) = watcher.watch(&dir, RecursiveMode::NonRecursive)
            {
                tracing::debug!(path = %dir.display(), "cannot watch: {err}");
                watched.remove(&dir);
            }
            if !recursive {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name();
                if name == "node_modules" || name == ".git" {
                    continue;
                }
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(entry.path());
                }
            }
        }
    }
}
