//! The status file of a running `capmux serve`: each child's state, rewritten on every
//! change, so that `capmux status` in another terminal shows the servers a client is using.
//!
//! One file per process, `serve-<pid>.json`, in `$XDG_RUNTIME_DIR/capmux` (else
//! `<tmp>/capmux-<uid>`, made readable by the user only). It is written to a temporary file
//! and renamed, so a reader never sees half of it, and removed on shutdown; the file of a
//! process that is gone (killed outright) is ignored and removed by the next reader.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Status;

/// What one `capmux serve` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub pid: u32,
    /// Its working directory: which project it serves.
    pub cwd: PathBuf,
    pub servers: Vec<Status>,
}

/// The folder of status files.
pub fn dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("capmux"),
        None => std::env::temp_dir().join(format!("capmux-{}", nix::unistd::getuid())),
    }
}

fn file_of(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("serve-{pid}.json"))
}

/// Writes `report` as this process's status file.
pub fn write(report: &Report) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let tmp = dir.join(format!(".serve-{}.json.tmp", report.pid));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, file_of(&dir, report.pid))
}

/// Removes this process's status file.
pub fn remove(pid: u32) {
    let _ = std::fs::remove_file(file_of(&dir(), pid));
}

/// The reports of the `capmux serve` processes running now, by pid.
pub fn running() -> Vec<Report> {
    let dir = dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut reports: Vec<Report> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("serve-"))
        .filter_map(|e| {
            let report: Report = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            if alive(report.pid) {
                Some(report)
            } else {
                let _ = std::fs::remove_file(e.path());
                None
            }
        })
        .collect();
    reports.sort_by_key(|r| r.pid);
    reports
}

/// Whether `pid` is a live capmux (a reused pid is some other program).
fn alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("capmux"))
}
