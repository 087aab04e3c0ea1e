//! `capmux skills export --to DIR`: every active skill written as `DIR/<name>/`, so that a
//! client's own skill loader (Claude Code's `~/.claude/skills`, Codex's `~/.agents/skills`)
//! sees package skills, as the AionUi RFC copies plugin skills into its host's folder.
//!
//! What it promises: only regular files are written, copied from the list made when the skill
//! was loaded (a skill holding a link is refused); nothing is written outside DIR (a skill's
//! name is its sanitized folder name, one path component); each skill is staged beside its
//! target and swapped in with one `renameat2(RENAME_EXCHANGE)`, so a reader never sees half a
//! skill; a record (`DIR/.capmux-skills.json`, written by temp file and rename) says what
//! capmux wrote, so a folder it did not write is never touched, and a skill that is gone is
//! removed only if capmux wrote it. Running it twice changes nothing. An exclusive lock on
//! `DIR/.capmux-skills.lock` keeps two exports from interleaving.
//!
//! Precedence: skills are taken in package order ((priority, id)); when two packages have a
//! skill of the same name, the first is exported and the later one is reported.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::{AT_FDCWD, OFlag, RenameFlags, renameat2};
use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::package::skill::{self, Skill};
use crate::pool::Pool;
use crate::skills;

const RECORD: &str = ".capmux-skills.json";
const LOCK: &str = ".capmux-skills.lock";

/// Why an export could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot use {path} as the export folder: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the export record {path} is corrupt ({reason}); fix or remove it, nothing was changed"
    )]
    Record { path: PathBuf, reason: String },
    #[error("cannot write the export record {path}: {source}")]
    WriteRecord {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What capmux wrote into the folder.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    /// Skill folder name → what was written there.
    skills: BTreeMap<String, Written>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Written {
    package: String,
    /// Digest over the skill's files (paths and contents).
    digest: String,
}

/// What an export did.
#[derive(Debug, Default)]
pub struct Report {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Exports every active skill of `pool` into `dir`.
pub fn export(pool: &Pool, dir: &Path) -> Result<Report, ExportError> {
    let folder_error = |source| ExportError::Folder {
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(folder_error)?;
    let dir = dir.canonicalize().map_err(folder_error)?;
    // O_NOFOLLOW: a link planted at the lock's name must not make us truncate its target.
    let lock = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(dir.join(LOCK))
        .map_err(folder_error)?;
    lock.lock().map_err(folder_error)?;

    let record_path = dir.join(RECORD);
    let old = read_record(&record_path)?;
    let mut new = Record::default();
    let mut report = Report::default();

    for active in pool.packages.iter().filter(|a| a.enabled) {
        for skill in &active.package.skills {
            let name = &skill.name;
            let in_pool = pool
                .skills
                .values()
                .any(|e| std::ptr::eq(pool.skill(e), skill));
            if !in_pool {
                continue;
            }
            let refuse = |report: &mut Report, message: String| {
                report.diagnostics.push(
                    Diagnostic::warning(&skill.dir, message).in_package(active.package.id.clone()),
                );
            };
            if let Some(first) = new.skills.get(name) {
                refuse(
                    &mut report,
                    format!(
                        "skill `{name}` is not exported: package `{}` has a skill of that name and comes first",
                        first.package
                    ),
                );
                continue;
            }
            if let Some(link) = first_link(&skill.dir) {
                refuse(
                    &mut report,
                    format!(
                        "skill `{name}` is not exported: it holds a link ({}), and links are never copied",
                        link.display()
                    ),
                );
                continue;
            }
            let target = dir.join(name);
            if target.symlink_metadata().is_ok() && !old.skills.contains_key(name) {
                refuse(
                    &mut report,
                    format!(
                        "skill `{name}` is not exported: {} exists and was not written by capmux; it is left alone",
                        target.display()
                    ),
                );
                continue;
            }
            let digest = tree_digest(skill);
            if old.skills.get(name).is_some_and(|w| w.digest == digest)
                && tree_matches(&target, skill)
            {
                report.unchanged.push(name.clone());
            } else {
                match write_skill(&dir, skill) {
                    Ok(()) => report.written.push(name.clone()),
                    Err(message) => {
                        refuse(
                            &mut report,
                            format!("skill `{name}` is not exported: {message}"),
                        );
                        if let Some(previous) = old.skills.get(name) {
                            new.skills.insert(name.clone(), previous.clone());
                        }
                        continue;
                    }
                }
            }
            new.skills.insert(
                name.clone(),
                Written {
                    package: active.package.id.clone(),
                    digest,
                },
            );
        }
    }

    for name in old.skills.keys().filter(|n| !new.skills.contains_key(*n)) {
        let target = dir.join(name);
        match target.symlink_metadata() {
            Ok(meta) if meta.is_dir() => match fs::remove_dir_all(&target) {
                Ok(()) => report.removed.push(name.clone()),
                Err(err) => report.diagnostics.push(Diagnostic::warning(
                    &target,
                    format!("cannot remove the skill capmux exported before: {err}"),
                )),
            },
            _ => {}
        }
    }
    write_record(&record_path, &new)?;
    Ok(report)
}

fn read_record(path: &Path) -> Result<Record, ExportError> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|err| ExportError::Record {
            path: path.to_path_buf(),
            reason: err.to_string(),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Record::default()),
        Err(err) => Err(ExportError::Record {
            path: path.to_path_buf(),
            reason: err.to_string(),
        }),
    }
}

fn write_record(path: &Path, record: &Record) -> Result<(), ExportError> {
    let error = |source| ExportError::WriteRecord {
        path: path.to_path_buf(),
        source,
    };
    let temp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(error)?;
    let text = serde_json::to_string_pretty(record).unwrap_or_default();
    file.write_all(text.as_bytes()).map_err(error)?;
    file.sync_all().map_err(error)?;
    fs::rename(&temp, path).map_err(error)
}

/// The first link anywhere below `dir`, if there is one.
fn first_link(dir: &Path) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in fs::read_dir(&folder).ok()?.filter_map(Result::ok) {
            let kind = entry.file_type().ok()?;
            if kind.is_symlink() {
                return Some(entry.path());
            }
            if kind.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    None
}

/// One digest over a skill's file list (paths and file digests).
fn tree_digest(skill: &Skill) -> String {
    let listing: String = skill
        .files
        .iter()
        .map(|f| format!("{} {}\n", f.path, f.digest))
        .collect();
    skill::digest(listing.as_bytes())
}

/// Whether `target` holds exactly the skill's files, byte for byte.
fn tree_matches(target: &Path, skill: &Skill) -> bool {
    let expected: BTreeMap<String, &str> = skill
        .files
        .iter()
        .map(|f| (f.path.clone(), f.digest.as_str()))
        .collect();
    let mut found = BTreeMap::new();
    let mut stack = vec![target.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = fs::read_dir(&folder) else {
            return false;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(kind) = entry.file_type() else {
                return false;
            };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let rel = path
                    .strip_prefix(target)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                let Ok(bytes) = fs::read(&path) else {
                    return false;
                };
                found.insert(rel, skill::digest(&bytes));
            } else {
                return false;
            }
        }
    }
    found.len() == expected.len()
        && found
            .iter()
            .all(|(k, v)| expected.get(k) == Some(&v.as_str()))
}

/// Stages the skill beside its target and swaps it in.
fn write_skill(dir: &Path, skill: &Skill) -> Result<(), String> {
    let target = dir.join(&skill.name);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let stage = dir.join(format!(
        ".capmux-stage-{}-{}-{nonce}",
        skill.name,
        std::process::id()
    ));
    let result = stage_files(&stage, skill).and_then(|()| {
        if target.symlink_metadata().is_ok() {
            renameat2(
                AT_FDCWD,
                &stage,
                AT_FDCWD,
                &target,
                RenameFlags::RENAME_EXCHANGE,
            )
            .map_err(|err| format!("cannot swap in the new copy: {err}"))
        } else {
            fs::rename(&stage, &target)
                .map_err(|err| format!("cannot move the new copy into place: {err}"))
        }
    });
    // After an exchange the stage holds the old copy; after a failure, the partial new one.
    let _ = fs::remove_dir_all(&stage);
    result
}

fn stage_files(stage: &Path, skill: &Skill) -> Result<(), String> {
    fs::create_dir(stage).map_err(|err| format!("cannot create {}: {err}", stage.display()))?;
    for file in &skill.files {
        // `file.path` was listed from the skill folder: relative, no `..`, no links.
        let bytes = skills::read_file(skill, file)?;
        if skill::digest(&bytes) != file.digest {
            return Err(format!(
                "`{}` changed since capmux loaded it; run the export again",
                file.path
            ));
        }
        let path = stage.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
        }
        fs::write(&path, bytes).map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    }
    Ok(())
}
